/**
 * `npm run bench -- ladder [--base REV] [--rounds N] [--seconds S] [--concerts N] [--profile DIR]`: where a
 * purchase's cost goes, as a ladder of servers measured side by side in one run with `wrk` (100
 * connections, 20 concerts unless `--concerts` says otherwise, rotating users): raw
 * `node:http`; the empty HttpApi endpoint; then the purchase built up a step at a time
 * (`bench/ladderServer.ts`); the full service; with `--base`, the full service of commit REV;
 * and the ceiling of the way the service answers a plain purchase, ahead of the HttpApi's router
 * (`bench/ceilingServer.ts`, `CEILING=route`). Each step's cost per request is the difference of the previous step's and its own time
 * per request at saturation (1 / throughput: the event loop is the limit). Every server has a
 * database of its own on one embedded PostgreSQL, holding the same N concerts of 150,000 seats
 * each: with few concerts, long runs can sell them out, and the run then says so (a sold-out
 * answer is cheaper than a sale, and would flatter the rungs that sell). With `--profile`, each
 * server writes a V8 CPU profile of its whole run into a directory of its own under DIR as it
 * stops, and the run prints how many requests each answered (to read a profile per request).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import { freePort, startEmbeddedPostgres } from "../src/sql/EmbeddedPostgres.js"
import { serviceEnv, serviceNodeArgs } from "../src/Settings.js"
import { bundled, fmt, git, option, root, worktree } from "./shared.js"

const concertIds = (count: number) =>
  Array.from({ length: count }, (_, i) => `00000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`)

const scriptFor = (concerts: ReadonlyArray<string>) => `
local concerts = {${concerts.map((c) => `"${c}"`).join(", ")}}
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"concert_id":"%s","user_id":"00000000-0000-0000-0000-%012d"}', concerts[(n % #concerts) + 1], (n % 5000) + 1)
  return wrk.format("POST", "/api/v1/tickets", {["content-type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d\\n", summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, latency:percentile(99)))
end
`

interface Rung {
  readonly name: string
  readonly port: number
  readonly process: ChildProcess
  readonly cwd: string
}

interface Measured {
  readonly requests: number
  readonly perSecond: number
  readonly non2xx: number
  readonly socketErrors: number
  readonly p99Ms: number
}

const wrk = (port: number, seconds: number, scriptFile: string) =>
  new Promise<Measured>((resolve, reject) =>
    execFile("wrk", ["-t1", "-c100", `-d${seconds}s`, "-s", scriptFile, `http://127.0.0.1:${port}`], (error, stdout) => {
      if (error) return reject(error)
      const line = stdout.split("\n").find((l) => l.startsWith("RESULT "))
      if (line === undefined) return reject(new Error(`wrk printed no result:\n${stdout}`))
      const [requests, micros, non2xx, socketErrors, p99] = line.slice(7).split(" ").map(Number) as [number, number, number, number, number]
      resolve({ requests, perSecond: requests / (micros / 1e6), non2xx, socketErrors, p99Ms: p99 / 1000 })
    }))

/**
 * The server is ready: the service's health says so (it answers 503 while it starts); the
 * others have only the purchase endpoint, and answer once they listen.
 */
const ready = async (port: number, name: string, service: boolean) => {
  for (let i = 0; i < 600; i++) {
    const answered = await (service
      ? fetch(`http://127.0.0.1:${port}/api/v1/tickets/health`).then((r) => r.status === 200, () => false)
      : fetch(`http://127.0.0.1:${port}/api/v1/tickets`, { method: "POST", body: "{}", headers: { "content-type": "application/json" } })
        .then(() => true, () => false))
    if (answered) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`${name} did not start`)
}

export const ladder = async (args: ReadonlyArray<string>) => {
  const rounds = Number(option(args, "rounds") ?? 2) || 2
  const seconds = Number(option(args, "seconds") ?? 10) || 10
  const base = option(args, "base")
  const profileDir = option(args, "profile")
  // How many concerts the buyers spread over: with fewer, more of them wait on each concert, and
  // its batches (a decision and a journal statement each) carry more orders.
  const count = Number(option(args, "concerts") ?? 20)
  if (!Number.isInteger(count) || count < 1) throw new Error("--concerts takes a whole number of concerts, 1 or more")
  const concerts = concertIds(count)
  const cleanup: Array<() => Promise<void>> = []
  try {
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-ladder-"))
    await fs.chmod(dataDir, 0o755)
    const server = await startEmbeddedPostgres({ dataDir: path.join(dataDir, "pg") })
    cleanup.unshift(async () => {
      await server.stop()
      await fs.rm(dataDir, { recursive: true, force: true })
    })
    const scriptFile = path.join(dataDir, "purchase.lua")
    await fs.writeFile(scriptFile, scriptFor(concerts))
    const admin = new pg.Client({ connectionString: server.url })
    // The server stops before this client ends when a run fails: that is not a second error.
    admin.on("error", () => {})
    await admin.connect()
    cleanup.unshift(() => admin.end())
    const databaseUrl = async (name: string) => {
      await admin.query(`CREATE DATABASE ${name}`)
      const url = new URL(server.url)
      url.pathname = `/${name}`
      return url.toString()
    }

    const rungs: Array<Rung> = []
    const start = async (name: string, file: string, env: Record<string, string>, cwd = root, nodeArgs: Array<string> = []) => {
      const port = await freePort()
      // JavaScript (the compiled service) runs as is; the bench's servers are bundled the same
      // way; the sources of a commit from before the build run through tsx, as its `npm start` did.
      const entry = file.endsWith(".js") ? [file] : file.startsWith("bench/") ? [await bundled(file)] : ["--import", "tsx", file]
      const profile = profileDir === undefined
        ? []
        : ["--cpu-prof", "--cpu-prof-dir", path.resolve(profileDir, name.replace(/[^A-Za-z0-9]+/g, "-").replace(/^-|-$/g, ""))]
      const child = spawn(process.execPath, [...nodeArgs, ...profile, ...serviceNodeArgs, ...entry], {
        cwd,
        env: { ...serviceEnv, ...process.env, ...env, PORT: String(port), HOST: "127.0.0.1", LOG_LEVEL: "warn" },
        stdio: ["ignore", "inherit", "inherit"]
      })
      cleanup.unshift(async () => {
        child.kill("SIGTERM")
        await new Promise((resolve) => child.once("exit", resolve))
      })
      await ready(port, name, /main\.(ts|js)$/.test(file))
      if (env.DATABASE_URL !== undefined) {
        const db = new pg.Client({ connectionString: env.DATABASE_URL })
        await db.connect()
        for (const [i, id] of concerts.entries()) {
          await db.query(
            "INSERT INTO concerts (id, name, venue, date, capacity, status) VALUES ($1, $2, 'Ladder Arena', '2027-01-01', 150000, 'ACTIVE')",
            [id, `Ladder ${i + 1}`]
          )
        }
        await db.end()
      }
      rungs.push({ name, port, process: child, cwd })
    }

    await start("raw node:http", "bench/rawServer.ts", {})
    await start("empty HttpApi endpoint", "bench/ceilingServer.ts", { CEILING: "api" })
    for (const [step, name] of [
      ["lookups", "+ user, closed-sales and concert checks"],
      ["sales", "+ ConcertSales, to an entity that answers at once"],
      ["entity", "+ the real entity, journal write skipped"],
      ["journal", "+ the journal write (the whole purchase)"]
    ] as const) {
      await start(name, "bench/ladderServer.ts", { LADDER: step, DATABASE_URL: await databaseUrl(`ladder_${step}`) })
    }
    const head = git("rev-parse", "--short", "HEAD") + (git("status", "--porcelain").length > 0 ? "+changes" : "")
    // As `npm start` runs it: compiled.
    execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" })
    const full = `the full service (${head})`
    await start(full, "dist/main.js", { DATABASE_URL: await databaseUrl("service") })
    if (base !== undefined) {
      const commit = git("rev-parse", "--short", base)
      const { checkout, remove } = await worktree(commit)
      cleanup.push(remove)
      // Compiled as well, when that commit has a build (`npm start` ran `dist/` since).
      const compiled = git("ls-tree", "--name-only", commit, "build.mjs", "tsconfig.build.json") !== ""
      if (compiled) execFileSync("npm", ["run", "build", "--silent"], { cwd: checkout, stdio: "inherit" })
      await start(`the full service (${commit})`, compiled ? "dist/main.js" : "src/main.ts", { DATABASE_URL: await databaseUrl("base") }, checkout)
    }
    // The ceiling of the way the service answers a plain purchase: ahead of the HttpApi's router.
    const route = "empty route ahead of the HttpApi"
    await start(route, "bench/ceilingServer.ts", { CEILING: "route" })

    const results = new Map<string, Array<Measured>>()
    /** Every request each server answered, warm-up included: what its profile covers. */
    const answered = new Map<string, number>()
    for (const rung of rungs) answered.set(rung.name, (await wrk(rung.port, 3, scriptFile)).requests) // warm-up
    for (let round = 1; round <= rounds; round++) {
      // Alternating the order between rounds spreads the machine's drift over every rung.
      const order = round % 2 === 1 ? rungs : [...rungs].reverse()
      for (const rung of order) {
        const measured = await wrk(rung.port, seconds, scriptFile)
        console.log(`round ${round} ${rung.name}: ${fmt(measured.perSecond)} req/s, p99 ${fmt(measured.p99Ms)} ms, non-2xx ${measured.non2xx}, socket errors ${measured.socketErrors}`)
        results.set(rung.name, [...(results.get(rung.name) ?? []), measured])
        answered.set(rung.name, answered.get(rung.name)! + measured.requests)
      }
    }
    const mean = (name: string) => {
      const all = results.get(name)!
      return all.reduce((sum, m) => sum + m.perSecond, 0) / all.length
    }
    const empty = mean("empty HttpApi endpoint")
    console.log(`\n| step | req/s | µs per request | step's cost, µs | × the empty endpoint |`)
    console.log("|---|---|---|---|---|")
    // Each step's cost: its time per request less the step before's, from the empty endpoint
    // to the full service of this checkout (the base commit's is there to compare with).
    const steps = rungs.findIndex((rung) => rung.name === full) + 1
    rungs.forEach((rung, i) => {
      const perSecond = mean(rung.name)
      const micros = 1e6 / perSecond
      const cost = i >= 2 && i < steps ? fmt(micros - 1e6 / mean(rungs[i - 1]!.name)) : ""
      console.log(`| ${rung.name} | ${fmt(perSecond)} | ${fmt(micros)} | ${cost} | ${fmt(perSecond / empty, 2)} |`)
    })
    console.log(`\nThe full service (${head}) × the empty route ahead of the HttpApi: ${fmt(mean(full) / mean(route), 2)}`)
    if (profileDir !== undefined) {
      console.log(`\nRequests each server answered (its profile's whole run, warm-up included), profiles in ${profileDir}:`)
      for (const [name, requests] of answered) console.log(`- ${name}: ${fmt(requests)}`)
    }
    const failures = [...results.values()].flat().reduce((n, m) => n + m.non2xx + m.socketErrors, 0)
    console.log(`\nnon-2xx answers and socket errors over all runs: ${failures}`)
    const refused = [...results.values()].flat().reduce((n, m) => n + m.non2xx, 0)
    if (refused > 0) {
      console.log(
        `${refused} answers were not 201 (sold out, at ${count} concert(s) of 150,000 seats?): ` +
          "the figures above count them; run fewer or shorter rounds, or more concerts"
      )
    }
  } finally {
    for (const step of cleanup) await step().catch((error) => console.error(String(error)))
  }
}
