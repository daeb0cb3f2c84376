import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { ConnectError } from "@connectrpc/connect";

/** Field name (as the server names it, e.g. "display_name") → what is wrong with it, in the server's words. */
export type FieldViolations = Readonly<Record<string, string>>;

const badRequestType = "google.rpc.BadRequest";

/**
 * The `google.rpc.BadRequest` field violations the server attached to an error (the auth service
 * answers `invalid_argument` with one per bad field). Works for Connect and gRPC-Web alike: both
 * transports surface error details as `{ type, value }` pairs.
 */
export function fieldViolations(err: unknown): FieldViolations {
  if (!(err instanceof ConnectError)) return {};
  const result: Record<string, string> = {};
  for (const detail of err.details) {
    if (!("type" in detail) || detail.type !== badRequestType) continue;
    for (const violation of decodeBadRequest(detail.value)) {
      const key = violation.field.replace(/^.*\./, "");
      result[key] = result[key] ? `${result[key]} ${violation.description}` : violation.description;
    }
  }
  return result;
}

interface FieldViolation {
  field: string;
  description: string;
}

// google.rpc.BadRequest { repeated FieldViolation field_violations = 1; }
// FieldViolation { string field = 1; string description = 2; string reason = 3; ... }
function decodeBadRequest(bytes: Uint8Array): FieldViolation[] {
  const violations: FieldViolation[] = [];
  try {
    const reader = new BinaryReader(bytes);
    while (reader.pos < reader.len) {
      const [fieldNo, wireType] = reader.tag();
      if (fieldNo === 1 && wireType === WireType.LengthDelimited) {
        violations.push(decodeViolation(reader.bytes()));
      } else {
        reader.skip(wireType, fieldNo);
      }
    }
  } catch {
    // A detail we cannot read is no reason to lose the error itself.
  }
  return violations;
}

function decodeViolation(bytes: Uint8Array): FieldViolation {
  const violation: FieldViolation = { field: "", description: "" };
  const reader = new BinaryReader(bytes);
  while (reader.pos < reader.len) {
    const [fieldNo, wireType] = reader.tag();
    if (fieldNo === 1 && wireType === WireType.LengthDelimited) violation.field = reader.string();
    else if (fieldNo === 2 && wireType === WireType.LengthDelimited) violation.description = reader.string();
    else reader.skip(wireType, fieldNo);
  }
  return violation;
}
