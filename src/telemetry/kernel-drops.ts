import { readFile } from 'node:fs/promises'

export interface UdpSocketStats {
  /** Datagrams the kernel dropped for these sockets, mostly because their receive queue was full. */
  drops: number
  /** Bytes waiting in their receive queues. */
  rxQueue: number
  /** How many sockets matched (more than one with SO_REUSEPORT workers). */
  sockets: number
}

const TABLES = ['/proc/net/udp', '/proc/net/udp6']

/**
 * The kernel's view of the UDP sockets bound to `port`, from /proc/net/udp and /proc/net/udp6: the only place
 * a datagram lost before the proxy read it is counted. null where those files do not exist (not Linux).
 */
export async function readUdpSocketStats(port: number): Promise<UdpSocketStats | null> {
  const portHex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`
  let found = false
  const stats: UdpSocketStats = { drops: 0, rxQueue: 0, sockets: 0 }
  for (const table of TABLES) {
    let text: string
    try {
      text = await readFile(table, 'utf8')
    } catch {
      continue
    }
    found = true
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ref pointer drops
      const fields = line.trim().split(/\s+/)
      if (fields.length < 13 || !fields[1].endsWith(portHex)) continue
      stats.sockets++
      stats.rxQueue += parseInt(fields[4].split(':')[1], 16)
      stats.drops += Number(fields[12])
    }
  }
  return found ? stats : null
}

export interface KernelDropsOptions {
  port: number
  intervalMs: number
  /** Called when the drop count rose since the last reading. */
  onRise: (rise: number, stats: UdpSocketStats) => void
}

/** Reads the listen socket's kernel counters periodically; `latest` is what /metrics and the log report. */
export class KernelDrops {
  latest: UdpSocketStats | null = null
  private readonly timer: NodeJS.Timeout
  private readonly options: KernelDropsOptions

  constructor(options: KernelDropsOptions) {
    this.options = options
    this.timer = setInterval(() => void this.read(), options.intervalMs)
    this.timer.unref()
  }

  /** One reading now (also what the timer does). The first reading sets the baseline without a warning. */
  async read(): Promise<UdpSocketStats | null> {
    const stats = await readUdpSocketStats(this.options.port)
    if (stats === null) return null
    const previous = this.latest
    this.latest = stats
    if (previous !== null && stats.drops > previous.drops) this.options.onRise(stats.drops - previous.drops, stats)
    return stats
  }

  close(): void {
    clearInterval(this.timer)
  }
}
