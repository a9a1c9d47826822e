/**
 * A module beside the caller's, for a worker to run: under a TypeScript test runner the caller is a .ts file,
 * compiled it is .js, and the sibling has the same extension.
 */
export function siblingModule(callerUrl: string, name: string): URL {
  return new URL(`./${name}${callerUrl.endsWith('.ts') ? '.ts' : '.js'}`, callerUrl)
}
