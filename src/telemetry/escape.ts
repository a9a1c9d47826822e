/** A short, printable, log-safe rendering of raw bytes: ASCII as is, everything else as \xNN. */
export function escapeSample(buf: Uint8Array, start: number, end: number, max = 80): string {
  let out = ''
  const stop = Math.min(end, start + max)
  for (let i = start; i < stop; i++) {
    const b = buf[i]
    if (b >= 0x20 && b < 0x7f && b !== 0x5c) out += String.fromCharCode(b)
    else if (b === 0x5c) out += '\\\\'
    else out += '\\x' + b.toString(16).padStart(2, '0')
  }
  if (end > stop) out += `...(+${end - stop} bytes)`
  return out
}
