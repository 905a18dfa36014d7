/**
 * `npm run cluster -- --runners N`: several processes on one machine, to try what an operator
 * runs on several (`docs/OPERATIONS.md`). One embedded PostgreSQL (under `DATA_DIR`, default
 * `.data/`, or `DATABASE_URL`), N runners that own the concerts (`CLUSTER_MODE=runner`, HTTP
 * on `PORT`+1…`PORT`+N, runner sockets on `RUNNER_PORT`…), and one process that serves HTTP only
 * (`CLUSTER_MODE=client`) on `PORT` (default 8080). Any of them answers any request. Ctrl-C
 * stops them all (SIGTERM, so each answers what it has in flight).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { startEmbeddedPostgres } from "./sql/EmbeddedPostgres.js"
import { serviceEnv, serviceNodeArgs } from "./Settings.js"

const option = (name: string, fallback: number): number => {
  const i = process.argv.indexOf(`--${name}`)
  const value = i >= 0 ? Number(process.argv[i + 1]) : fallback
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a whole number of at least 1`)
    process.exit(2)
  }
  return value
}

const runners = option("runners", 2)
const port = Number(process.env.PORT ?? 8080)
const runnerPort = Number(process.env.RUNNER_PORT ?? 7431)

const main = async () => {
  const configured = process.env.DATABASE_URL
  const database = configured === undefined || configured === ""
    ? await startEmbeddedPostgres({ dataDir: process.env.DATA_DIR ?? ".data" })
    : undefined
  const url = configured !== undefined && configured !== "" ? configured : database!.url
  const children: Array<ChildProcess> = []
  const start = (name: string, env: Record<string, string>) => {
    // The compiled service beside this module, or the sources through tsx.
    const entry = import.meta.url.endsWith(".js")
      ? [new URL("./main.js", import.meta.url).pathname]
      : ["--import", "tsx", "src/main.ts"]
    const child = spawn(process.execPath, [...serviceNodeArgs, ...entry], {
      env: { ...serviceEnv, ...process.env, DATABASE_URL: url, ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    for (const stream of [child.stdout, child.stderr]) {
      stream?.on("data", (chunk: Buffer) => {
        for (const line of chunk.toString().split("\n")) if (line !== "") process.stdout.write(`${name} | ${line}\n`)
      })
    }
    children.push(child)
    return child
  }
  for (let i = 1; i <= runners; i++) {
    start(`runner-${i}`, { CLUSTER_MODE: "runner", PORT: String(port + i), RUNNER_PORT: String(runnerPort + i - 1) })
  }
  start("http", { CLUSTER_MODE: "client", PORT: String(port) })
  console.log(`cluster: ${runners} runner(s) on http://localhost:${port + 1}…${port + runners}, HTTP only on http://localhost:${port}`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    for (const child of children) child.kill("SIGTERM")
    await Promise.all(children.map((child) =>
      child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", resolve))
    ))
    await database?.stop()
    process.exit(0)
  }
  process.on("SIGINT", () => void stop())
  process.on("SIGTERM", () => void stop())
  // A process that dies takes nothing down with it: the others go on (kill one to watch it).
  for (const child of children) {
    child.once("exit", (code, signal) => {
      if (!stopping) console.log(`cluster: process ${child.pid} exited (${signal ?? code}); the others go on`)
    })
  }
}

main().catch((error: unknown) => {
  console.error(`could not start the cluster: ${error instanceof Error ? error.message : String(error)}`)
  process.exit(1)
})
