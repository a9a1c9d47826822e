import { stat, watch as watchDir, type FSWatcher } from 'node:fs'
import { dirname } from 'node:path'

export interface FileWatchOptions {
  /** Events often come in bursts (a ConfigMap update is several renames): wait this long for quiet. */
  debounceMs: number
  /** The fallback check, for filesystems and mounts where inotify says nothing. */
  pollMs: number
  onChange: () => void
}

/**
 * Tells when a config file may have changed, including the way Kubernetes updates a mounted ConfigMap: the
 * file is a symlink through `..data`, which is swapped atomically to a new directory, so the file's own inode
 * never changes and a watch on the file sees nothing. So the directory is watched (any event in it counts),
 * and a periodic stat (following links) compares identity, size and mtime as a fallback. Callers confirm a
 * real change by content; this only says when to look.
 */
export class FileWatch {
  private readonly file: string
  private readonly options: FileWatchOptions
  private watcher: FSWatcher | null = null
  private readonly poll: NodeJS.Timeout
  private debounce: NodeJS.Timeout | null = null
  private signature = ''
  private closed = false

  constructor(file: string, options: FileWatchOptions) {
    this.file = file
    this.options = options
    this.startWatcher()
    this.poll = setInterval(() => this.checkStat(), options.pollMs)
    this.poll.unref()
    this.checkStat(true)
  }

  close(): void {
    this.closed = true
    clearInterval(this.poll)
    if (this.debounce !== null) clearTimeout(this.debounce)
    this.watcher?.close()
  }

  private startWatcher(): void {
    try {
      // Any event in the directory may matter: Kubernetes renames `..data`, editors rename temp files over the
      // file, and some filesystems report no name at all.
      this.watcher = watchDir(dirname(this.file), { persistent: false }, () => this.changed())
      this.watcher.on('error', () => {
        // The directory went away (unmounted, deleted): polling carries on and a later stat notices.
        this.watcher?.close()
        this.watcher = null
      })
    } catch {
      this.watcher = null // no inotify here: polling only
    }
  }

  private checkStat(initial = false): void {
    stat(this.file, (err, s) => {
      if (this.closed) return
      const signature = err ? `error:${err.code}` : `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`
      if (initial) {
        this.signature = signature
        return
      }
      if (signature !== this.signature) {
        this.signature = signature
        this.changed()
      }
      if (this.watcher === null && !err) this.startWatcher()
    })
  }

  private changed(): void {
    if (this.closed) return
    if (this.debounce !== null) clearTimeout(this.debounce)
    this.debounce = setTimeout(() => {
      this.debounce = null
      this.options.onChange()
    }, this.options.debounceMs)
    this.debounce.unref()
  }
}
