import { Code, ConnectError } from "@connectrpc/connect";

export interface PageCursor {
  createdAt: Date;
  id: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** An opaque token for the next page: the last row's sort key. */
export function encodePageToken(cursor: PageCursor): string {
  return Buffer.from(`${cursor.createdAt.toISOString()}|${cursor.id}`).toString("base64url");
}

export function decodePageToken(token: string): PageCursor {
  const [iso, id] = Buffer.from(token, "base64url").toString("utf8").split("|");
  const createdAt = new Date(iso ?? "");
  if (!id || !UUID.test(id) || Number.isNaN(createdAt.getTime())) {
    throw new ConnectError("page_token is not a token this service returned", Code.InvalidArgument);
  }
  return { createdAt, id };
}
