import { create, createFileRegistry, type DescMessage } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_duration,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";

// google/rpc/error_details.proto, only the two messages this service sends: clients that know the
// standard error details (grpc-status-details-bin, Connect's `details`) decode them as usual.
const { STRING, MESSAGE } = FieldDescriptorProto_Type;
const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;
const registry = createFileRegistry(
  create(FileDescriptorProtoSchema, {
    name: "google/rpc/error_details.proto",
    package: "google.rpc",
    dependency: ["google/protobuf/duration.proto"],
    syntax: "proto3",
    messageType: [
      {
        name: "RetryInfo",
        field: [
          {
            name: "retry_delay",
            jsonName: "retryDelay",
            number: 1,
            label: OPTIONAL,
            type: MESSAGE,
            typeName: ".google.protobuf.Duration",
          },
        ],
      },
      {
        name: "BadRequest",
        field: [
          {
            name: "field_violations",
            jsonName: "fieldViolations",
            number: 1,
            label: REPEATED,
            type: MESSAGE,
            typeName: ".google.rpc.BadRequest.FieldViolation",
          },
        ],
        nestedType: [
          {
            name: "FieldViolation",
            field: [
              { name: "field", jsonName: "field", number: 1, label: OPTIONAL, type: STRING },
              { name: "description", jsonName: "description", number: 2, label: OPTIONAL, type: STRING },
            ],
          },
        ],
      },
    ],
  }),
  (name) => (name === "google/protobuf/duration.proto" ? file_google_protobuf_duration : undefined),
);

function message(typeName: string): DescMessage {
  const desc = registry.getMessage(typeName);
  if (!desc) throw new Error(`${typeName} missing from the error details registry`);
  return desc;
}

export const RetryInfoSchema = message("google.rpc.RetryInfo");
export const BadRequestSchema = message("google.rpc.BadRequest");

export interface FieldViolation {
  field: string;
  description: string;
}

/** `invalid_argument` naming each bad field, with a google.rpc.BadRequest detail. */
export function invalidArgument(violations: FieldViolation[]): ConnectError {
  const text = violations.map((v) => `${v.field} ${v.description}`).join("; ");
  return new ConnectError(text, Code.InvalidArgument, undefined, [
    { desc: BadRequestSchema, value: { fieldViolations: violations } },
  ]);
}

/** `resource_exhausted` with a google.rpc.RetryInfo detail saying when to try again. */
export function tooManyAttempts(what: string, retryAfterMs: number): ConnectError {
  const seconds = Math.max(1, Math.ceil(retryAfterMs / 1000));
  return new ConnectError(`${what}: try again in ${seconds} s`, Code.ResourceExhausted, undefined, [
    { desc: RetryInfoSchema, value: { retryDelay: { seconds: BigInt(seconds), nanos: 0 } } },
  ]);
}
