/** A module beside the caller's, for a worker to run: .ts under a TypeScript test runner, .js once compiled. */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl)
}
