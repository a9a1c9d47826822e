// deploy/kubernetes.yaml against the code it deploys and the image it runs: the probes hit the admin server's real
// routes on its real port, the ConfigMap lands where the image reads its config, the config itself is valid, and
// the app sends where the proxy listens. Every fact is read from its source (the manifest, the Dockerfile, the code's exports),
// never restated here, and every check is shown to fail on a manifest that disagrees.
import { readFileSync } from 'node:fs'
import { posix } from 'node:path'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { startAdmin } from '../src/admin/server.ts'
import { compileConfig } from '../src/config/compile.ts'
import { DEFAULTS, type Config } from '../src/config/config.ts'
import { ConfigError, formatProblem } from '../src/config/errors.ts'
import { configPath, parseConfig } from '../src/config/load.ts'
import { DRAIN_TIMEOUT_MS } from '../src/data-plane.ts'
import { RuleSet } from '../src/match/rule-set.ts'
import { isLoopback } from '../src/net/address.ts'
import { present, silentLogger } from './fixtures/udp.ts'

const root = new URL('../', import.meta.url)
const read = (path: string): string => readFileSync(new URL(path, root), 'utf8')
/** Kubernetes' default when the pod spec does not say. */
const DEFAULT_GRACE_SECONDS = 30
const CONFIG_MAP_NAME = 'statsd-filter-proxy'

// The parts of the Kubernetes objects the checks read.
interface Probe {
  httpGet?: { path?: string; port?: number | string; scheme?: string }
}
interface EnvVar {
  name: string
  value?: string
}
interface SecurityContext {
  runAsNonRoot?: boolean
  runAsUser?: number
  readOnlyRootFilesystem?: boolean
  allowPrivilegeEscalation?: boolean
  privileged?: boolean
  capabilities?: { drop?: string[]; add?: string[] }
}
interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  workingDir?: string
  env?: EnvVar[]
  restartPolicy?: string
  ports?: { name?: string; containerPort: number; protocol?: string }[]
  volumeMounts?: { name: string; mountPath: string; subPath?: string; subPathExpr?: string; readOnly?: boolean }[]
  livenessProbe?: Probe
  readinessProbe?: Probe
  startupProbe?: Probe
  securityContext?: SecurityContext
  resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number> }
}
interface Volume {
  name: string
  configMap?: { name: string; items?: { key: string; path: string }[] }
}
interface PodSpec {
  terminationGracePeriodSeconds?: number
  securityContext?: SecurityContext
  initContainers?: Container[]
  containers: Container[]
  volumes?: Volume[]
}
interface K8sObject {
  apiVersion: string
  kind: string
  metadata: { name: string }
  data?: Record<string, string>
  spec?: {
    selector?: { matchLabels?: Record<string, string> }
    template?: { metadata?: { labels?: Record<string, string> }; spec: PodSpec }
  }
}

/** Everything the checks look at; mutated copies of it prove each check can fail. */
interface Inputs {
  objects: K8sObject[]
  dockerfile: string
  /** How long the proxy's shutdown waits for sends in flight (src/data-plane.ts). */
  drainTimeoutMs: number
}

function load(): Inputs {
  const docs = parseAllDocuments(read('deploy/kubernetes.yaml'))
  const list = Array.isArray(docs) ? docs : []
  const objects: K8sObject[] = []
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`deploy/kubernetes.yaml: ${doc.errors.map((e) => e.message).join('; ')}`)
    const value = doc.toJS() as K8sObject | null
    if (value !== null) objects.push(value)
  }
  return { objects, dockerfile: read('Dockerfile'), drainTimeoutMs: DRAIN_TIMEOUT_MS }
}

/** What the final stage of the Dockerfile says about the running container. */
interface Image {
  workdir: string
  /** Absolute destinations of COPY/ADD, the bundled filter.yaml among them. */
  copies: string[]
  /** EXPOSE entries as `port/protocol`, protocol lower-case (tcp when unstated). */
  exposed: string[]
  user: string | null
  entrypoint: string | null
}

function parseDockerfile(text: string): Image {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
  const image: Image = { workdir: '/', copies: [], exposed: [], user: null, entrypoint: null }
  let current = image
  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue
    const [instruction, ...rest] = line.split(/\s+/)
    const args = rest.filter((a) => !a.startsWith('--'))
    switch (instruction.toUpperCase()) {
      case 'FROM': // only the last stage runs
        current = { workdir: '/', copies: [], exposed: [], user: null, entrypoint: null }
        break
      case 'WORKDIR':
        current.workdir = posix.resolve(current.workdir, args[0])
        break
      case 'COPY':
      case 'ADD': {
        const dest = args[args.length - 1]
        const sources = args.slice(0, -1)
        const base = posix.resolve(current.workdir, dest)
        // `COPY a b/`, or several sources: the files keep their names inside the destination directory.
        if (dest.endsWith('/') || sources.length > 1)
          current.copies.push(...sources.map((s) => posix.join(base, posix.basename(s))))
        else current.copies.push(base)
        break
      }
      case 'EXPOSE':
        current.exposed.push(...args.map((a) => (a.includes('/') ? a.toLowerCase() : `${a}/tcp`)))
        break
      case 'USER':
        current.user = args[0]
        break
      case 'ENTRYPOINT':
        current.entrypoint = rest.join(' ')
        break
    }
  }
  return current
}

function configMap(m: Inputs): K8sObject {
  const found = m.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === CONFIG_MAP_NAME)
  if (found === undefined) throw new Error(`no ConfigMap ${CONFIG_MAP_NAME}`)
  return found
}

function podSpec(m: Inputs): PodSpec {
  const deployments = m.objects.filter((o) => o.kind === 'Deployment')
  if (deployments.length !== 1) throw new Error(`expected one Deployment, found ${deployments.length}`)
  const spec = deployments[0].spec?.template?.spec
  if (spec === undefined) throw new Error('the Deployment has no pod template')
  return spec
}

/** The proxy container: a regular container, or a native sidecar (an init container that keeps running). */
function proxyContainer(m: Inputs): Container {
  const spec = podSpec(m)
  const all = [...(spec.initContainers ?? []), ...spec.containers].filter((c) =>
    c.image?.includes('statsd-filter-proxy'),
  )
  if (all.length !== 1) throw new Error(`expected one statsd-filter-proxy container, found ${all.length}`)
  return all[0]
}

function appContainers(m: Inputs): Container[] {
  const proxy = proxyContainer(m)
  return podSpec(m).containers.filter((c) => c !== proxy)
}

/** The file the image's CLI will read: --config, then $FILTER_CONFIG, $PROXY_CONFIG_FILE, ./filter.yaml (load.ts). */
function configFileInContainer(m: Inputs, c: Container): string {
  const args = c.args ?? []
  let flag: string | undefined
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--config' || args[i] === '-c') flag = args[i + 1]
    else if (args[i].startsWith('--config=')) flag = args[i].slice('--config='.length)
  }
  const env: NodeJS.ProcessEnv = {}
  for (const v of c.env ?? []) env[v.name] = v.value
  return posix.resolve(c.workingDir ?? parseDockerfile(m.dockerfile).workdir, configPath(flag, env))
}

/** The ConfigMap's filter.yaml, validated by the proxy's own loader; a warning counts as a problem here too. */
function proxyConfig(m: Inputs): Config {
  const text = configMap(m).data?.['filter.yaml']
  if (text === undefined)
    throw new Error(`the ConfigMap has no filter.yaml (keys: ${Object.keys(configMap(m).data ?? {}).join(', ')})`)
  const config = parseConfig('ConfigMap statsd-filter-proxy: filter.yaml', text)
  if (config.warnings.length > 0) throw new Error(config.warnings.map((w) => formatProblem(config.file, w)).join('\n'))
  return config
}

function namedPort(c: Container, port: number | string | undefined): number | undefined {
  if (typeof port === 'number') return port
  return c.ports?.find((p) => p.name === port)?.containerPort
}

function probes(c: Container): [string, Probe][] {
  return (['livenessProbe', 'readinessProbe', 'startupProbe'] as const).flatMap((k) =>
    c[k] === undefined ? [] : [[k, c[k]] as [string, Probe]],
  )
}

function env(c: Container, name: string): string | undefined {
  return c.env?.find((v) => v.name === name)?.value
}

/** Kubernetes quantities to plain numbers (cores, bytes). */
function quantity(v: string | number | undefined): number {
  if (v === undefined) return NaN
  if (typeof v === 'number') return v
  const m = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi|k|M|G)?$/.exec(v)
  if (m === null) return NaN
  const unit: Record<string, number> = { m: 1e-3, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, k: 1e3, M: 1e6, G: 1e9 }
  return Number(m[1]) * (m[2] === undefined ? 1 : unit[m[2]])
}

type Check = (m: Inputs) => string[] | Promise<string[]>

/** Each returns the disagreements it finds; an exception (a missing object) counts as one. */
const CHECKS = {
  'the probes hit the admin server routes that mean liveness and readiness': async (m) => {
    const problems: string[] = []
    const c = proxyContainer(m)
    const config = proxyConfig(m)
    const compiled = compileConfig(config)
    const rules = new RuleSet(compiled, config.mode)
    let ready = false
    // The real admin server with this config's rules, on a free loopback port.
    const admin = await startAdmin(
      { host: '127.0.0.1', port: 0 },
      {
        ready: () => ready,
        metrics: async () => '',
        mode: () => config.mode,
        rules: () => rules,
        top: () => null,
        cardinality: async () => null,
        reload: async () => ({ ok: true, changed: false, restartNeeded: [], errors: [] }),
      },
      silentLogger(),
    )
    try {
      const status = async (probe: Probe | undefined): Promise<number | string> => {
        const path = probe?.httpGet?.path
        if (path === undefined) return 'no httpGet path'
        return (await fetch(`http://127.0.0.1:${admin.port}${path}`)).status
      }
      for (const [name, probe] of probes(c)) {
        const scheme = probe.httpGet?.scheme ?? 'HTTP'
        if (scheme !== 'HTTP') problems.push(`${name}: scheme ${scheme}; the admin server speaks plain HTTP`)
      }
      if (c.livenessProbe === undefined) problems.push('no livenessProbe')
      if (c.readinessProbe === undefined) problems.push('no readinessProbe')
      // Not ready (starting, or shutting down): alive, but out of rotation. A liveness probe that followed
      // readiness would restart a proxy that is only draining.
      ready = false
      const livenessNotReady = await status(c.livenessProbe)
      if (livenessNotReady !== 200)
        problems.push(
          `livenessProbe ${c.livenessProbe?.httpGet?.path}: ${livenessNotReady} from a live proxy that is not ready (want 200)`,
        )
      const readinessNotReady = await status(c.readinessProbe)
      if (readinessNotReady !== 503)
        problems.push(
          `readinessProbe ${c.readinessProbe?.httpGet?.path}: ${readinessNotReady} from a proxy that is not ready (want 503)`,
        )
      ready = true
      for (const [name, probe] of probes(c)) {
        const code = await status(probe)
        if (code !== 200) problems.push(`${name} ${probe.httpGet?.path}: ${code} from a ready proxy (want 200)`)
      }
    } finally {
      await admin.close()
    }
    return problems
  },

  "the probes' port is the admin port of filter.yaml, declared on the container, reachable from the kubelet": (m) => {
    const problems: string[] = []
    const c = proxyContainer(m)
    const { admin } = proxyConfig(m)
    if (admin === null) return ['filter.yaml disables admin: nothing answers the probes']
    // The kubelet connects to the pod IP: a loopback-only admin server fails every probe.
    if (isLoopback(admin.host) || admin.host === 'localhost')
      problems.push(`admin.host ${admin.host} is loopback; the kubelet probes the pod IP`)
    const declared = c.ports?.filter((p) => p.containerPort === admin.port && (p.protocol ?? 'TCP') === 'TCP') ?? []
    if (declared.length === 0) problems.push(`no TCP containerPort ${admin.port} (admin.port) on the proxy container`)
    // An image that documents its TCP port documents the admin port.
    const tcp = parseDockerfile(m.dockerfile).exposed.filter((e) => e.endsWith('/tcp'))
    if (tcp.length > 0 && !tcp.includes(`${admin.port}/tcp`))
      problems.push(`admin.port ${admin.port}, but the image EXPOSEs ${tcp.join(', ')}`)
    for (const [name, probe] of probes(c)) {
      const port = namedPort(c, probe.httpGet?.port)
      if (port === undefined)
        problems.push(`${name}: port ${String(probe.httpGet?.port)} is not a port of the container`)
      else if (port !== admin.port) problems.push(`${name}: port ${port}, but filter.yaml has admin.port ${admin.port}`)
    }
    return problems
  },

  'the ConfigMap is mounted, as a whole directory, where the image reads its config': (m) => {
    const problems: string[] = []
    const c = proxyContainer(m)
    const spec = podSpec(m)
    const image = parseDockerfile(m.dockerfile)
    // Where the image reads by default (WORKDIR + ./filter.yaml), and where it bundles its own copy: one place.
    const imageReads = posix.resolve(image.workdir, configPath(undefined, {}))
    if (!image.copies.includes(imageReads))
      problems.push(`the Dockerfile bundles no config at ${imageReads} (COPY: ${image.copies.join(', ')})`)
    if (c.command !== undefined)
      problems.push(`command ${JSON.stringify(c.command)} replaces the image's ENTRYPOINT (${image.entrypoint})`)
    const reads = configFileInContainer(m, c)
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]))
    const mount = c.volumeMounts?.find((vm) => vm.mountPath === posix.dirname(reads))
    if (mount === undefined)
      return [
        ...problems,
        `nothing is mounted on ${posix.dirname(reads)}, the directory of ${reads}, which the proxy reads`,
      ]
    if (posix.dirname(reads) !== posix.dirname(imageReads))
      problems.push(`the proxy reads ${reads}, not the image's ${imageReads}`)
    const volume = volumes.get(mount.name)
    if (volume?.configMap?.name !== configMap(m).metadata.name)
      problems.push(`${mount.mountPath} is volume ${mount.name}, not ConfigMap ${configMap(m).metadata.name}`)
    const file = posix.basename(reads)
    const items = volume?.configMap?.items
    const key = items === undefined ? file : items.find((i) => i.path === file)?.key
    if (key === undefined || configMap(m).data?.[key] === undefined)
      problems.push(`the ConfigMap volume has no ${file}`)
    if (key !== undefined && key !== 'filter.yaml')
      problems.push(`the file read comes from key ${key}, not filter.yaml`)
    return problems
  },

  'no subPath: ConfigMap updates reach the proxy and hot reload sees them': (m) => {
    const spec = podSpec(m)
    const configVolumes = new Set(
      (spec.volumes ?? []).filter((v) => v.configMap?.name === configMap(m).metadata.name).map((v) => v.name),
    )
    const proxy = proxyContainer(m)
    const problems: string[] = []
    for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
      for (const vm of c.volumeMounts ?? []) {
        if ((c === proxy || configVolumes.has(vm.name)) && (vm.subPath !== undefined || vm.subPathExpr !== undefined)) {
          problems.push(`${c.name}: ${vm.mountPath} uses a subPath, which never receives ConfigMap updates`)
        }
      }
    }
    if (configVolumes.size === 0) problems.push(`no volume of ConfigMap ${configMap(m).metadata.name}`)
    return problems
  },

  "the ConfigMap's filter.yaml is a valid config without warnings, and its rules compile": (m) => {
    const config = proxyConfig(m)
    compileConfig(config)
    return config.format === 'yaml' ? [] : [`read as ${config.format}, not filter.yaml`]
  },

  'the app is told to send where the proxy listens': (m) => {
    const problems: string[] = []
    const { listen } = proxyConfig(m)
    const apps = appContainers(m)
    if (apps.length === 0) return ['no app container']
    for (const c of apps) {
      let told = 0
      for (const [hostVar, portVar] of [
        ['DD_AGENT_HOST', 'DD_DOGSTATSD_PORT'],
        ['STATSD_HOST', 'STATSD_PORT'],
      ]) {
        const host = env(c, hostVar)
        const port = env(c, portVar)
        if (host === undefined && port === undefined) continue
        told++
        if (port !== String(listen.port))
          problems.push(`${c.name}: ${portVar}=${port}, but the proxy listens on port ${listen.port}`)
        // Same pod, same network namespace: a loopback address reaches a wildcard listener; a specific listen
        // address must be used as is. `localhost` may resolve to ::1 while the socket is udp4.
        const reaches = listen.host === '0.0.0.0' ? host !== undefined && host.startsWith('127.') : host === listen.host
        if (!reaches)
          problems.push(`${c.name}: ${hostVar}=${host} does not reach the proxy listening on ${listen.host}`)
      }
      if (told === 0)
        problems.push(`${c.name}: neither DD_AGENT_HOST/DD_DOGSTATSD_PORT nor STATSD_HOST/STATSD_PORT is set`)
    }
    return problems
  },

  'the proxy listens on the port the image EXPOSEs, the default of the code, and does not forward to itself': (m) => {
    const problems: string[] = []
    const { listen, forward } = proxyConfig(m)
    const image = parseDockerfile(m.dockerfile)
    const udp = image.exposed.filter((e) => e.endsWith('/udp')).map((e) => Number(e.split('/')[0]))
    if (!udp.includes(listen.port))
      problems.push(`filter.yaml listens on ${listen.port}; the image EXPOSEs ${image.exposed.join(', ') || 'nothing'}`)
    if (!udp.includes(DEFAULTS.listen.port))
      problems.push(
        `the image EXPOSEs ${image.exposed.join(', ')}, not the default listen port ${DEFAULTS.listen.port}/udp`,
      )
    if (listen.port !== DEFAULTS.listen.port)
      problems.push(
        `filter.yaml listens on ${listen.port}, not ${DEFAULTS.listen.port} (the default, where DogStatsD clients send)`,
      )
    if (forward.port === listen.port && (isLoopback(forward.host) || forward.host === 'localhost'))
      problems.push(`forward ${forward.host}:${forward.port} is the proxy itself`)
    return problems
  },

  "the grace period covers the proxy's drain": (m) => {
    if (!(Number.isFinite(m.drainTimeoutMs) && m.drainTimeoutMs > 0))
      return [`DRAIN_TIMEOUT_MS is not a positive duration: ${m.drainTimeoutMs}`]
    const drainSeconds = m.drainTimeoutMs / 1000
    const grace = podSpec(m).terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS
    return grace > drainSeconds
      ? []
      : [`terminationGracePeriodSeconds ${grace} does not cover the ${drainSeconds} s drain`]
  },

  'the proxy runs as non-root, read-only, unprivileged, without capabilities, with bounded resources': (m) => {
    const problems: string[] = []
    const c = proxyContainer(m)
    const s: SecurityContext = { ...podSpec(m).securityContext, ...c.securityContext }
    if (s.runAsNonRoot !== true) problems.push('runAsNonRoot is not true')
    // The kubelet verifies runAsNonRoot only against a numeric user; the image's USER is a name.
    const user = parseDockerfile(m.dockerfile).user
    if (user !== null && !/^\d+$/.test(user) && !(typeof s.runAsUser === 'number' && s.runAsUser > 0)) {
      problems.push(`the image's USER is ${user} (a name): runAsNonRoot needs a numeric non-zero runAsUser`)
    }
    if (s.runAsUser === 0) problems.push('runAsUser 0 is root')
    if (s.readOnlyRootFilesystem !== true) problems.push('readOnlyRootFilesystem is not true')
    if (s.allowPrivilegeEscalation !== false) problems.push('allowPrivilegeEscalation is not false')
    if (s.privileged === true) problems.push('privileged')
    if (!(s.capabilities?.drop ?? []).includes('ALL')) problems.push('capabilities do not drop ALL')
    if ((s.capabilities?.add ?? []).length > 0) problems.push(`capabilities added: ${s.capabilities?.add?.join(', ')}`)
    for (const r of ['cpu', 'memory']) {
      const request = quantity(c.resources?.requests?.[r])
      const limit = quantity(c.resources?.limits?.[r])
      if (!(request > 0)) problems.push(`no ${r} request`)
      if (!(limit >= request)) problems.push(`${r} limit ${c.resources?.limits?.[r]} is missing or below the request`)
    }
    return problems
  },

  'the proxy keeps running as a native sidecar, and the Deployment selects its own pods': (m) => {
    const problems: string[] = []
    const spec = podSpec(m)
    const c = proxyContainer(m)
    // An init container without restartPolicy: Always must exit before the app starts: the proxy never does.
    if ((spec.initContainers ?? []).includes(c) && c.restartPolicy !== 'Always')
      problems.push('the proxy is an init container without restartPolicy: Always')
    const deployment = m.objects.find((o) => o.kind === 'Deployment')
    const selector = deployment?.spec?.selector?.matchLabels ?? {}
    const labels = deployment?.spec?.template?.metadata?.labels ?? {}
    if (Object.keys(selector).length === 0) problems.push('the Deployment has no selector')
    for (const [k, v] of Object.entries(selector))
      if (labels[k] !== v) problems.push(`the pod template lacks the selector's label ${k}=${v}`)
    return problems
  },
} satisfies Record<string, Check>

type CheckName = keyof typeof CHECKS

async function run(check: Check, m: Inputs): Promise<string[]> {
  try {
    return await check(m)
  } catch (err) {
    return [err instanceof ConfigError ? err.message : String((err as Error).message)]
  }
}

t.test('deploy/kubernetes.yaml parses: one ConfigMap and one Deployment', async (t) => {
  const m = load()
  t.same(m.objects.map((o) => o.kind).sort(), ['ConfigMap', 'Deployment'])
})

for (const [name, check] of Object.entries(CHECKS)) {
  t.test(name, async (t) => {
    t.same(await run(check, load()), [])
  })
}

/** Edits a fresh copy of the inputs; each must make its check report at least one problem. */
const MUTATIONS: { check: CheckName; what: string; edit: (m: Inputs) => void }[] = [
  {
    check: 'the probes hit the admin server routes that mean liveness and readiness',
    what: 'liveness path /health',
    edit: (m) => setProbe(m, 'livenessProbe', { path: '/health' }),
  },
  {
    check: 'the probes hit the admin server routes that mean liveness and readiness',
    what: 'readiness on /healthz',
    edit: (m) => setProbe(m, 'readinessProbe', { path: '/healthz' }),
  },
  {
    check: 'the probes hit the admin server routes that mean liveness and readiness',
    what: 'liveness on /readyz',
    edit: (m) => setProbe(m, 'livenessProbe', { path: '/readyz' }),
  },
  {
    check: 'the probes hit the admin server routes that mean liveness and readiness',
    what: 'startup on /ready',
    edit: (m) => setProbe(m, 'startupProbe', { path: '/ready' }),
  },
  {
    check: 'the probes hit the admin server routes that mean liveness and readiness',
    what: 'HTTPS probe',
    edit: (m) => setProbe(m, 'readinessProbe', { scheme: 'HTTPS' }),
  },
  {
    check: "the probes' port is the admin port of filter.yaml, declared on the container, reachable from the kubelet",
    what: 'containerPort 8129',
    edit: (m) => (present(proxyContainer(m).ports, 'the ports')[0].containerPort = 8129),
  },
  {
    check: "the probes' port is the admin port of filter.yaml, declared on the container, reachable from the kubelet",
    what: 'filter.yaml admin port 9128',
    edit: (m) => editFilterYaml(m, /admin: \{ host: 0\.0\.0\.0, port: 8128 \}/, 'admin: { host: 0.0.0.0, port: 9128 }'),
  },
  {
    check: "the probes' port is the admin port of filter.yaml, declared on the container, reachable from the kubelet",
    what: 'admin on 127.0.0.1',
    edit: (m) => editFilterYaml(m, /admin: \{ host: 0\.0\.0\.0/, 'admin: { host: 127.0.0.1'),
  },
  {
    check: "the probes' port is the admin port of filter.yaml, declared on the container, reachable from the kubelet",
    what: 'image EXPOSEs 9128/tcp',
    edit: (m) => (m.dockerfile = m.dockerfile.replace(/^EXPOSE .*$/m, 'EXPOSE 8125/udp 9128/tcp')),
  },
  {
    check: "the probes' port is the admin port of filter.yaml, declared on the container, reachable from the kubelet",
    what: 'probe on a numeric port 8125',
    edit: (m) => setProbe(m, 'livenessProbe', { port: 8125 }),
  },
  {
    check: "the probes' port is the admin port of filter.yaml, declared on the container, reachable from the kubelet",
    what: 'probe on an undeclared port name',
    edit: (m) => setProbe(m, 'readinessProbe', { port: 'http' }),
  },
  {
    check: 'the ConfigMap is mounted, as a whole directory, where the image reads its config',
    what: 'mounted elsewhere',
    edit: (m) => (present(proxyContainer(m).volumeMounts, 'the volume mounts')[0].mountPath = '/config'),
  },
  {
    check: 'the ConfigMap is mounted, as a whole directory, where the image reads its config',
    what: 'image WORKDIR /app',
    edit: (m) => (m.dockerfile = m.dockerfile.replace('WORKDIR /etc/statsd-filter-proxy', 'WORKDIR /app')),
  },
  {
    check: 'the ConfigMap is mounted, as a whole directory, where the image reads its config',
    what: 'image bundles its config elsewhere',
    edit: (m) => (m.dockerfile = m.dockerfile.replace('/etc/statsd-filter-proxy/filter.yaml', '/etc/filter.yaml')),
  },
  {
    check: 'the ConfigMap is mounted, as a whole directory, where the image reads its config',
    what: 'FILTER_CONFIG outside the mount',
    edit: (m) => (proxyContainer(m).env = [{ name: 'FILTER_CONFIG', value: '/tmp/filter.yaml' }]),
  },
  {
    check: 'the ConfigMap is mounted, as a whole directory, where the image reads its config',
    what: '--config to another key',
    edit: (m) => (proxyContainer(m).args = ['--config', 'other.yaml']),
  },
  {
    check: 'the ConfigMap is mounted, as a whole directory, where the image reads its config',
    what: 'command overrides the entrypoint',
    edit: (m) => (proxyContainer(m).command = ['node', 'other.js']),
  },
  {
    check: 'the ConfigMap is mounted, as a whole directory, where the image reads its config',
    what: 'key renamed',
    edit: (m) => renameKey(m, 'filter.yaml', 'config.yaml'),
  },
  {
    check: 'no subPath: ConfigMap updates reach the proxy and hot reload sees them',
    what: 'subPath',
    edit: (m) => (present(proxyContainer(m).volumeMounts, 'the volume mounts')[0].subPath = 'filter.yaml'),
  },
  {
    check: "the ConfigMap's filter.yaml is a valid config without warnings, and its rules compile",
    what: 'unknown key',
    edit: (m) => editFilterYaml(m, /^insights: true$/m, 'insight: true'),
  },
  {
    check: "the ConfigMap's filter.yaml is a valid config without warnings, and its rules compile",
    what: 'duplicate rule (a warning)',
    edit: (m) => editFilterYaml(m, /- legacy\.\n/, '- legacy.\n    - legacy.\n'),
  },
  {
    check: "the ConfigMap's filter.yaml is a valid config without warnings, and its rules compile",
    what: 'YAML syntax error',
    edit: (m) => editFilterYaml(m, /^mode: enforce$/m, 'mode: [enforce'),
  },
  {
    check: 'the app is told to send where the proxy listens',
    what: 'DD_DOGSTATSD_PORT 8127',
    edit: (m) => setEnv(m, 'DD_DOGSTATSD_PORT', '8127'),
  },
  {
    check: 'the app is told to send where the proxy listens',
    what: 'STATSD_HOST localhost',
    edit: (m) => setEnv(m, 'STATSD_HOST', 'localhost'),
  },
  {
    check: 'the app is told to send where the proxy listens',
    what: 'filter.yaml listens on 9125',
    edit: (m) =>
      editFilterYaml(m, /listen: \{ host: 127\.0\.0\.1, port: 8125 \}/, 'listen: { host: 127.0.0.1, port: 9125 }'),
  },
  {
    check: 'the app is told to send where the proxy listens',
    what: 'no StatsD variables',
    edit: (m) => (appContainers(m)[0].env = []),
  },
  {
    check: 'the proxy listens on the port the image EXPOSEs, the default of the code, and does not forward to itself',
    what: 'EXPOSE 9125/udp',
    edit: (m) => (m.dockerfile = m.dockerfile.replace(/^EXPOSE .*$/m, 'EXPOSE 9125/udp 8128/tcp')),
  },
  {
    check: 'the proxy listens on the port the image EXPOSEs, the default of the code, and does not forward to itself',
    what: 'EXPOSE 8125 (tcp)',
    edit: (m) => (m.dockerfile = m.dockerfile.replace(/^EXPOSE .*$/m, 'EXPOSE 8125 8128/tcp')),
  },
  {
    check: 'the proxy listens on the port the image EXPOSEs, the default of the code, and does not forward to itself',
    what: 'filter.yaml listens on 9125',
    edit: (m) =>
      editFilterYaml(m, /listen: \{ host: 127\.0\.0\.1, port: 8125 \}/, 'listen: { host: 127.0.0.1, port: 9125 }'),
  },
  {
    check: 'the proxy listens on the port the image EXPOSEs, the default of the code, and does not forward to itself',
    what: 'forward to itself',
    edit: (m) => editFilterYaml(m, /^forward: .*$/m, 'forward: { host: 127.0.0.1, port: 8125 }'),
  },
  {
    check: "the grace period covers the proxy's drain",
    what: 'grace 2 s',
    edit: (m) => (podSpec(m).terminationGracePeriodSeconds = 2),
  },
  {
    check: "the grace period covers the proxy's drain",
    what: 'a drain of 60 s',
    edit: (m) => (m.drainTimeoutMs = 60_000),
  },
  {
    check: "the grace period covers the proxy's drain",
    what: 'a drain as long as the grace period',
    edit: (m) => (m.drainTimeoutMs = (podSpec(m).terminationGracePeriodSeconds ?? DEFAULT_GRACE_SECONDS) * 1000),
  },
  {
    check: 'the proxy runs as non-root, read-only, unprivileged, without capabilities, with bounded resources',
    what: 'writable root',
    edit: (m) => (present(proxyContainer(m).securityContext, 'the securityContext').readOnlyRootFilesystem = false),
  },
  {
    check: 'the proxy runs as non-root, read-only, unprivileged, without capabilities, with bounded resources',
    what: 'no runAsUser',
    edit: (m) => delete present(proxyContainer(m).securityContext, 'the securityContext').runAsUser,
  },
  {
    check: 'the proxy runs as non-root, read-only, unprivileged, without capabilities, with bounded resources',
    what: 'escalation allowed',
    edit: (m) => delete present(proxyContainer(m).securityContext, 'the securityContext').allowPrivilegeEscalation,
  },
  {
    check: 'the proxy runs as non-root, read-only, unprivileged, without capabilities, with bounded resources',
    what: 'capabilities kept',
    edit: (m) =>
      (present(proxyContainer(m).securityContext, 'the securityContext').capabilities = { drop: ['NET_RAW'] }),
  },
  {
    check: 'the proxy runs as non-root, read-only, unprivileged, without capabilities, with bounded resources',
    what: 'no memory limit',
    edit: (m) => delete present(proxyContainer(m).resources?.limits, 'the resource limits').memory,
  },
  {
    check: 'the proxy keeps running as a native sidecar, and the Deployment selects its own pods',
    what: 'init container without restartPolicy',
    edit: (m) => delete proxyContainer(m).restartPolicy,
  },
]

function setProbe(
  m: Inputs,
  probe: 'livenessProbe' | 'readinessProbe' | 'startupProbe',
  httpGet: NonNullable<Probe['httpGet']>,
): void {
  const c = proxyContainer(m)
  c[probe] = { ...c[probe], httpGet: { ...c[probe]?.httpGet, ...httpGet } }
}

function editFilterYaml(m: Inputs, from: RegExp, to: string): void {
  const data = present(configMap(m).data, 'the ConfigMap data')
  if (!from.test(data['filter.yaml'])) throw new Error(`mutation does not apply: ${from} not in filter.yaml`)
  data['filter.yaml'] = data['filter.yaml'].replace(from, to)
}

function renameKey(m: Inputs, from: string, to: string): void {
  const data = present(configMap(m).data, 'the ConfigMap data')
  data[to] = data[from]
  Reflect.deleteProperty(data, from)
}

function setEnv(m: Inputs, name: string, value: string): void {
  const v = appContainers(m)[0].env?.find((e) => e.name === name)
  if (v === undefined) throw new Error(`mutation does not apply: no ${name}`)
  v.value = value
}

t.test('every check fails when the manifest and the code or image disagree', async (t) => {
  for (const name of Object.keys(CHECKS) as CheckName[]) {
    t.ok(
      MUTATIONS.some((mu) => mu.check === name),
      `a mutation exercises: ${name}`,
    )
  }
  for (const { check, what, edit } of MUTATIONS) {
    const m = load()
    edit(m)
    const problems = await run(CHECKS[check], m)
    t.ok(problems.length > 0, `${what} → ${problems[0] ?? 'not detected'}`)
  }
})
