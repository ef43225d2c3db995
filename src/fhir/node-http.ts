/**
 * Small pieces the HTTP servers of the package share (the FHIR API, the MCP endpoint, the environment server).
 */

/** Stop a Node HTTP server: no new connections, open keep-alive connections closed, resolved once it is closed. */
export function closeServer(server: unknown): Promise<void> {
  return new Promise<void>((resolve) => {
    const s = server as { closeAllConnections?: () => void; close(cb: () => void): void };
    s.close(() => resolve());
    s.closeAllConnections?.();
  });
}

/** A fetch Request's body as bytes, read as it arrives; undefined (and the rest of the body cancelled) beyond `limit`. */
export async function readBodyLimited(req: Request, limit: number): Promise<Uint8Array | undefined> {
  if (!req.body) return new Uint8Array();
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    chunks.push(value);
  }
  const buf = new Uint8Array(size);
  let o = 0;
  for (const ch of chunks) {
    buf.set(ch, o);
    o += ch.byteLength;
  }
  return buf;
}
