// Request/reply over the Node IPC channel between the bench orchestrator and its child processes.
import { fork, type ChildProcess } from 'node:child_process'

type Handler = (args: unknown) => unknown

interface Request {
  id: number
  op: string
  args: unknown
}

type Reply = { id: number; result: unknown } | { id: number; error: string }

interface ReadyMessage {
  ready: unknown
}

/**
 * Child side: announces `ready`, then answers requests. The child exits when the orchestrator goes away, so a
 * crashed or killed bench never leaves a process bound to a port or sending load.
 */
export function serve(ready: unknown, handlers: Record<string, Handler>): void {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error('bench child started without an IPC channel (run it through bench/run)')
  process.on('disconnect', () => process.exit(0))
  process.on('message', (msg: Request) => {
    void (async () => {
      let reply: Reply
      try {
        const handler = handlers[msg.op]
        if (handler === undefined) throw new Error(`unknown op ${msg.op}`)
        reply = { id: msg.id, result: await handler(msg.args) }
      } catch (err) {
        reply = { id: msg.id, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }
      }
      send(reply)
    })()
  })
  send({ ready } satisfies ReadyMessage)
}

const live = new Set<Child>()

/** Kills every child still running; safe to call from an 'exit' handler (synchronous). */
export function killAllChildren(): void {
  for (const child of live) child.kill()
}

/** Orchestrator side of one child process. */
export class Child {
  readonly name: string
  readonly pid: number
  private readonly process: ChildProcess
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  private exited: Error | null = null

  private constructor(name: string, child: ChildProcess) {
    this.name = name
    this.process = child
    if (child.pid === undefined) throw new Error(`${name}: spawn failed`)
    this.pid = child.pid
    live.add(this)
    child.on('message', (msg: Reply | ReadyMessage) => {
      if (!('id' in msg)) return
      const waiter = this.pending.get(msg.id)
      if (waiter === undefined) return
      this.pending.delete(msg.id)
      if ('error' in msg) waiter.reject(new Error(`${name}: ${msg.error}`))
      else waiter.resolve(msg.result)
    })
    child.on('exit', (code, signal) => {
      live.delete(this)
      this.exited = new Error(`${name} exited (code ${code}, signal ${signal})`)
      for (const waiter of this.pending.values()) waiter.reject(this.exited)
      this.pending.clear()
    })
  }

  /**
   * Forks `module` with the given Node binary and waits for its ready message. The child's stdout goes to our
   * stderr: stdout is kept for the report.
   */
  static async start<R>(
    name: string,
    module: string,
    args: string[],
    execPath: string,
    timeoutMs: number,
    execArgv: string[] = [],
  ): Promise<{ child: Child; ready: R }> {
    const proc = fork(module, args, { execPath, execArgv, stdio: ['ignore', 2, 'inherit', 'ipc'] })
    const child = new Child(name, proc)
    const ready = await withTimeout(
      new Promise<R>((resolve, reject) => {
        const onMessage = (msg: Reply | ReadyMessage): void => {
          if ('ready' in msg) {
            proc.off('message', onMessage)
            resolve(msg.ready as R)
          }
        }
        proc.on('message', onMessage)
        proc.once('exit', (code, signal) =>
          reject(new Error(`${name} exited before it was ready (code ${code}, signal ${signal})`)),
        )
      }),
      timeoutMs,
      `${name} did not start within ${timeoutMs} ms`,
    ).catch((err: unknown) => {
      child.kill()
      throw err
    })
    return { child, ready }
  }

  call<T>(op: string, args?: unknown, timeoutMs = 10_000): Promise<T> {
    if (this.exited !== null) return Promise.reject(this.exited)
    const id = this.nextId++
    const reply = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
    })
    this.process.send({ id, op, args } satisfies Request)
    return withTimeout(reply, timeoutMs, `${this.name}: ${op} got no reply within ${timeoutMs} ms`).finally(() =>
      this.pending.delete(id),
    )
  }

  kill(): void {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL')
    live.delete(this)
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}
