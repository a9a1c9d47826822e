import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'

export interface ResolvedAddress {
  address: string
  family: 4 | 6
}

/** An IP literal as is, a name through the system resolver (what every other process on the host sees). */
export async function resolveHost(host: string): Promise<ResolvedAddress> {
  const literal = isIP(host)
  if (literal !== 0) return { address: host, family: literal === 6 ? 6 : 4 }
  const { address, family } = await lookup(host)
  return { address, family: family === 6 ? 6 : 4 }
}

/** 127.0.0.0/8, ::1 and the IPv4-mapped loopback: where a datagram never meets a real MTU. */
export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.')
}
