/** What the benchmark drivers share: the target service, number formatting, bulk purchases. */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import { freePort, startEmbeddedPostgres } from "../src/sql/EmbeddedPostgres.js"
import { serviceEnv, serviceNodeArgs } from "../src/Settings.js"

export const root = path.resolve(import.meta.dirname, "..")

export const git = (...args: Array<string>) => execFileSync("git", args, { cwd: root, encoding: "utf8" }).trim()

/**
 * A bench server (`bench/ceilingServer.ts`, ...) bundled as the service is (`bundle.mjs`), so
 * that servers measured beside the service run code built the same way; returns the bundle's
 * path. It goes under `node_modules/.cache`, where the packages it leaves out are found.
 */
export const bundled = async (script: string): Promise<string> => {
  const { bundleOptions } = await import(path.join(root, "bundle.mjs"))
  const esbuild = await import("esbuild")
  const outfile = path.join(root, "node_modules", ".cache", "ticketoverflow-bench", script.replace(/\.ts$/, ".js"))
  await esbuild.build({ ...bundleOptions, entryPoints: [path.join(root, script)], outfile })
  return outfile
}

/**
 * Commit `commit` checked out in a temporary directory others can enter (the embedded database
 * runs as another user), sharing this checkout's `node_modules` when the lockfiles agree.
 */
export const worktree = async (commit: string) => {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-ab-"))
  await fs.chmod(parent, 0o755)
  const checkout = path.join(parent, commit)
  git("worktree", "add", "--detach", checkout, commit)
  const sameLock = git("diff", "--stat", commit, "--", "package-lock.json") === ""
  if (sameLock) await fs.symlink(path.join(root, "node_modules"), path.join(checkout, "node_modules"))
  else execFileSync("npm", ["ci", "--no-audit", "--no-fund"], { cwd: checkout, stdio: "inherit" })
  return {
    checkout,
    remove: async () => {
      git("worktree", "remove", "--force", checkout)
      await fs.rm(parent, { recursive: true, force: true })
    }
  }
}

/** One request to the service under test (setup and checks; the load itself is `bench/load.ts`). */
export const request = async (port: number, method: string, pathname: string, body?: string) => {
  const response = await fetch(`http://127.0.0.1:${port}${pathname}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { "content-type": "application/json" } })
  })
  return { status: response.status, body: await response.text() }
}

/** Clock ticks a second, for the CPU times in `/proc/PID/stat`. */
const ticksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100
  } catch {
    return 100
  }
})()

/** CPU seconds a process has used so far, all its threads (user and system). */
export const cpuSeconds = async (pid: number): Promise<number> => {
  const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8")
  // The fields after the command's name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond
}

export interface LoadResult {
  readonly wallMs: number
  readonly perSecond: number
  readonly histogram: Record<string, number>
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
  readonly okP50: number
  readonly okP99: number
  /** The socket errors behind the answers that never came (status 0), by code. */
  readonly errors: Record<string, number>
}

/** Purchases from `bench/load.ts` in a process of its own (see there), and what they got. */
export const load = (options: { port: number; concerts: ReadonlyArray<string>; requests: number; connections: number; burst: boolean }) =>
  new Promise<LoadResult>((resolve, reject) =>
    execFile(process.execPath, ["--import", "tsx", "bench/load.ts", JSON.stringify(options)], { cwd: root, maxBuffer: 1 << 20 }, (error, stdout) =>
      error ? reject(error) : resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as LoadResult)))

/**
 * PostgreSQL's commits and WAL bytes from now until the returned function is called (each
 * read waits 1.5 s first: statistics are flushed about every second).
 */
export const databaseWork = async (db: pg.Client) => {
  const read = async () => {
    await new Promise((resolve) => setTimeout(resolve, 1500))
    return (await db.query<{ commits: string; lsn: string }>(
      "SELECT xact_commit::text AS commits, pg_current_wal_lsn()::text AS lsn FROM pg_stat_database WHERE datname = current_database()"
    )).rows[0]!
  }
  const before = await read()
  return async () => {
    const after = await read()
    const wal = (await db.query<{ bytes: string }>("SELECT pg_wal_lsn_diff($1, $2)::text AS bytes", [after.lsn, before.lsn])).rows[0]!
    return { commits: Number(after.commits) - Number(before.commits), walBytes: Number(wal.bytes) }
  }
}

export const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits })

export interface Target {
  readonly host: string
  readonly port: number
  readonly db: pg.Client | undefined
  /** Empty when a --url target was given without DATABASE_URL. */
  readonly databaseUrl: string
  readonly peakRssMb: () => number
  /**
   * Starts counting CPU: the returned function gives the seconds used since by the service (all
   * its threads) and by its embedded database's processes (its backends and background
   * processes, as `pg_stat_activity` lists them, read from `/proc`). Undefined for what this
   * machine cannot see or does not start alone: a --url service, a database at DATABASE_URL.
   * A backend that ended meanwhile is not counted.
   */
  readonly cpuFromNow: () => Promise<() => Promise<{ readonly service: number | undefined; readonly database: number | undefined }>>
  /** The service's resident memory now (0 for a --url target). */
  readonly rssMb: () => Promise<number>
  readonly stop: () => Promise<void>
}

export const option = (args: ReadonlyArray<string>, name: string): string | undefined => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : undefined
}

/**
 * The service under test: started here on its own PostgreSQL (or DATABASE_URL), or `--url`.
 * `--profile DIR` has the started service write a CPU profile into DIR when it stops;
 * `checkout` starts the service of another checkout (an A/B's "before").
 */
export const startTarget = async (args: ReadonlyArray<string>, checkout = root): Promise<Target> => {
  const url = option(args, "url")
  const steps: Array<() => Promise<void>> = []
  let databaseUrl = process.env.DATABASE_URL ?? ""
  let embedded = false
  let host = "127.0.0.1"
  let port: number
  let service: ChildProcess | undefined
  if (url !== undefined) {
    const parsed = new URL(url)
    host = parsed.hostname
    port = Number(parsed.port || 80)
  } else {
    if (databaseUrl === "") {
      embedded = true
      const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-bench-"))
      const server = await startEmbeddedPostgres({ dataDir })
      steps.push(async () => {
        await server.stop()
        await fs.rm(dataDir, { recursive: true, force: true })
      })
      databaseUrl = server.url
    }
    port = await freePort()
    // --profile DIR: the service writes a V8 CPU profile there when it stops (open it in
    // Chrome DevTools or speedscope).
    const profileDir = option(args, "profile")
    const profile = profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", path.resolve(profileDir)]
    // As `npm start` runs it: compiled into dist/ (a checkout from before that, or
    // BENCH_FROM_SOURCE=1, runs the sources through tsx), with a 64 MB young generation
    // (purchases allocate fast; fewer scavenges) and an old one collected once it has grown 30 %.
    const builds = async (file: string) => fs.access(path.join(checkout, file)).then(() => true, () => false)
    const compiled = process.env.BENCH_FROM_SOURCE !== "1" && (await builds("build.mjs") || await builds("tsconfig.build.json"))
    if (compiled) execFileSync("npm", ["run", "build", "--silent"], { cwd: checkout, stdio: "inherit" })
    const entry = compiled ? ["dist/main.js"] : ["--import", "tsx", "src/main.ts"]
    // BENCH_NODE_ARGS replaces the service's Node settings, to measure others.
    const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter((a) => a !== "") ?? serviceNodeArgs
    service = spawn(process.execPath, [...profile, ...nodeArgs, ...entry], {
      cwd: checkout,
      env: { ...serviceEnv, ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), HOST: host, LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? "warn" },
      stdio: ["ignore", "inherit", "inherit"]
    })
    const running = service
    steps.push(async () => {
      running.kill("SIGTERM")
      await new Promise((resolve) => running.once("exit", resolve))
    })
  }
  for (let i = 0; ; i++) {
    const health = await request(port, "GET", "/api/v1/tickets/health").catch(() => undefined)
    if (health?.status === 200) break
    if (i > 600) throw new Error(`the service at ${host}:${port} is not healthy`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  let db: pg.Client | undefined
  if (databaseUrl !== "") {
    db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    const client = db
    steps.push(() => client.end())
  }
  let peak = 0
  const pid = service?.pid
  const rssMb = async () => {
    if (pid === undefined) return 0
    const status = await fs.readFile(`/proc/${pid}/status`, "utf8").catch(() => "")
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
  }
  const sampler = setInterval(async () => {
    peak = Math.max(peak, await rssMb())
  }, 500)
  steps.push(async () => clearInterval(sampler))
  const cpuNow = async () => {
    const pids = db === undefined || !embedded
      ? []
      : (await db.query<{ pid: number }>("SELECT pid FROM pg_stat_activity")).rows.map((row) => row.pid)
    // A process that ended between the list and its read is left out.
    const read = await Promise.all(pids.map(async (p) => [p, await cpuSeconds(p).catch(() => undefined)] as const))
    const database = new Map(read.filter((entry): entry is readonly [number, number] => entry[1] !== undefined))
    return { service: pid === undefined ? undefined : await cpuSeconds(pid), database }
  }
  return {
    host,
    port,
    db,
    databaseUrl,
    peakRssMb: () => peak,
    cpuFromNow: async () => {
      const before = await cpuNow()
      return async () => {
        const after = await cpuNow()
        let database = 0
        // Backends started since count from 0.
        for (const [p, seconds] of after.database) database += seconds - (before.database.get(p) ?? 0)
        return {
          service: after.service === undefined || before.service === undefined ? undefined : after.service - before.service,
          database: embedded && db !== undefined ? database : undefined
        }
      }
    },
    rssMb,
    stop: async () => {
      for (const step of steps.reverse()) await step().catch(() => undefined)
    }
  }
}

export const createConcert = async (port: number, capacity: number, name: string, date = "2027-01-01") => {
  const response = await request(port, "POST", "/api/v1/concerts", JSON.stringify({ name, venue: "Bench Arena", date, capacity, status: "ACTIVE" }))
  if (response.status !== 201) throw new Error(`creating a concert answered ${response.status} ${response.body}`)
  return (JSON.parse(response.body) as { id: string }).id
}

/** Buys `count` tickets (100 at a time) and returns their ids. */
export const buy = async (port: number, concertId: string, count: number) => {
  const ids: Array<string> = []
  for (let i = 0; i < count; i += 100) {
    const batch = await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) =>
      request(port, "POST", "/api/v1/tickets", JSON.stringify({
        concert_id: concertId,
        user_id: `00000000-0000-0000-0000-${String(((i + j) % 5000) + 1).padStart(12, "0")}`
      }))))
    for (const r of batch) if (r.status === 201) ids.push((JSON.parse(r.body) as { id: string }).id)
  }
  return ids
}

export const printAll = async (port: number, ids: ReadonlyArray<string>) => {
  for (let i = 0; i < ids.length; i += 100) {
    await Promise.all(ids.slice(i, i + 100).map((id) => request(port, "POST", `/api/v1/tickets/${id}/print`)))
  }
}

