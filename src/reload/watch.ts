import { stat, statSync, watch as watchDir, type FSWatcher, type Stats } from 'node:fs'
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
 * never changes and a watch on the file sees nothing. So the directory is watched, and on any event in it, and
 * periodically as a fallback, a stat (following links) compares the file's identity, size and mtime with the
 * last seen. Callers confirm a real change by content; this only says when to look.
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
    // Synchronously, so a write right after construction is a change, whatever order the stats finish in.
    this.signature = signatureOf(() => statSync(this.file))
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
      // file, and some filesystems report no name at all. So each one is checked by a stat of the file: in a busy
      // directory (/tmp on this machine) unrelated events had started a compile of the unchanged config on a
      // worker thread several times a second, 4-7% of a core at idle.
      this.watcher = watchDir(dirname(this.file), { persistent: false }, () => this.checkStat())
      this.watcher.on('error', () => {
        // The directory went away (unmounted, deleted): polling carries on and a later stat notices.
        this.watcher?.close()
        this.watcher = null
      })
    } catch {
      this.watcher = null // no inotify here: polling only
    }
  }

  private checkStat(): void {
    stat(this.file, (err, s) => {
      if (this.closed) return
      const signature = signatureOf(() => {
        if (err) throw err
        return s
      })
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

/** Identity, size and mtime of the file a stat found, or the error code it failed with. */
function signatureOf(stats: () => Stats): string {
  try {
    const s = stats()
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}`
  } catch (err) {
    return `error:${(err as NodeJS.ErrnoException).code}`
  }
}
