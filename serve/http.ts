/**
 * HTTP plumbing for the lab's server: JSON answers, errors that carry their
 * status, and request bodies read under a size limit.
 */

/** An error whose message is one sentence for the client, with its HTTP status. */
export class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

export function json(value: unknown, status = 200, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

export function errorResponse(error: HttpError): Response {
  return json({ error: error.message }, error.status, error.headers);
}

function megabytes(bytes: number): string {
  return bytes >= 1e6 ? `${+(bytes / 1e6).toFixed(2)} MB` : `${bytes} bytes`;
}

/** The whole body, refused with 413 as soon as it is known to pass `limit` bytes. */
export async function readBody(request: Request, limit: number): Promise<Uint8Array> {
  const tooLarge = () =>
    new HttpError(413, `The request body is larger than the limit of ${megabytes(limit)}.`);
  const declared = Number(request.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  if (!request.body) return new Uint8Array(0);
  // A declared length within the limit is held to by the HTTP layer: read it in one go.
  if (declared >= 0) return new Uint8Array(await request.arrayBuffer());
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = request.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  const body = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}
