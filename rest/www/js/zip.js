// zip.js -- reads the entries of a ZIP file in the browser (central directory, stored or
// deflated entries through the browser's own DecompressionStream), so a dropped ZIP is
// uploaded entry by entry with its own progress and result, whatever the server accepts.
// ZIP64 and encrypted entries are refused with a clear error.

function u16(v, o) { return v.getUint16(o, true); }
function u32(v, o) { return v.getUint32(o, true); }

// -> [{ name, size, read: () => Promise<Blob> }]
export async function zipEntries(file) {
  const tailLen = Math.min(file.size, 65557);
  const tail = new DataView(await file.slice(file.size - tailLen).arrayBuffer());
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i--) if (u32(tail, i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw new Error('not a ZIP file (no end of central directory)');
  const count = u16(tail, eocd + 10);
  const cdSize = u32(tail, eocd + 12);
  const cdOff = u32(tail, eocd + 16);
  if (cdOff === 0xffffffff || count === 0xffff) throw new Error('ZIP64 archives are not supported here');
  const cd = new DataView(await file.slice(cdOff, cdOff + cdSize).arrayBuffer());
  const out = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (u32(cd, p) !== 0x02014b50) throw new Error('corrupt ZIP central directory');
    const flags = u16(cd, p + 8);
    const method = u16(cd, p + 10);
    const csize = u32(cd, p + 20);
    const usize = u32(cd, p + 24);
    const nlen = u16(cd, p + 28);
    const xlen = u16(cd, p + 30);
    const clen = u16(cd, p + 32);
    const local = u32(cd, p + 42);
    const name = new TextDecoder().decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, nlen));
    p += 46 + nlen + xlen + clen;
    if (name.endsWith('/')) continue; // a folder
    out.push({
      name, size: usize,
      async read() {
        if (flags & 1) throw new Error('encrypted ZIP entry');
        const lh = new DataView(await file.slice(local, local + 30).arrayBuffer());
        if (u32(lh, 0) !== 0x04034b50) throw new Error('corrupt ZIP entry');
        const start = local + 30 + u16(lh, 26) + u16(lh, 28);
        const data = file.slice(start, start + csize);
        if (method === 0) return data;
        if (method !== 8) throw new Error(`ZIP compression method ${method} is not supported`);
        const stream = data.stream().pipeThrough(new DecompressionStream('deflate-raw'));
        return new Response(stream).blob();
      },
    });
  }
  return out;
}
