/** The `authorization` header of a call as the holder of `token`: `client.greet(req, { headers: bearer(token) })`. */
export const bearer = (token: string): { authorization: string } => ({ authorization: `Bearer ${token}` });
