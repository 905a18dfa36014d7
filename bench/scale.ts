/**
 * `npm run bench -- scale [--share 0.4] [--seconds 15] [--runners 1,2,3] [--concerts 30] [--connections 256] [--rounds 1] [--routing spread|owner] [--hop-connections 8] [--only hop]`:
 * purchases per second with 1, 2 and 3
 * runners on one embedded PostgreSQL, each runner limited to the same CPU share so that a
 * 2-core machine can show what a runner adds. The limit is a cgroup v1 `cpu` group per runner
 * (`/sys/fs/cgroup/cpu/ticketoverflow-runner-N`, `cpu.cfs_quota_us` = share × `cpu.cfs_period_us`,
 * the runner's pid written into `cgroup.procs`; needs root). Load: one `wrk` per runner, as a
 * load balancer spreading buyers over the runners (a request may land on a runner that does not
 * own its concert: one hop), 256 connections each: enough to keep every runner busy (at 64, a
 * runner among three sat idle a quarter of the time, waiting on the others' answers, and the
 * bench measured that wait rather than what the runners can sell). Exactness: the tickets in
 * the database equal the 201s. Each concert is written by its owner alone, so the concerts each
 * runner owns are shown: with 30 concerts the split is seldom even.
 *
 * `--routing owner` sends each runner's buyers to the concerts that runner owns (read from its
 * metrics after the warm-up), as a load balancer that knew each concert's runner would: no
 * purchase crosses to another runner, which shows what crossing costs.
 *
 * Beside purchases a second, each run shows what says why: the runners' CPU per purchase (all
 * their threads, from `/proc/PID/stat`), the orders a concert entity's batch carried (decided
 * and journaled together), the share of batches the entities decided without a fiber (their
 * express lane), the share of purchases that crossed to another runner's desk, the
 * orders a desk message carried, the share of cgroup
 * periods in which each runner used up its share (below 100 %, it waited on something else),
 * and how idle the machine was (from `/proc/stat`: near 0, the machine, not the runners, was
 * the limit).
 */
import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import pg from "pg"
import { freePort, startEmbeddedPostgres } from "../src/sql/EmbeddedPostgres.js"
import { serviceEnv, serviceNodeArgs } from "../src/Settings.js"
import { cpuSeconds, createConcert, fmt, option, request, root } from "./shared.js"

const cgroupRoot = "/sys/fs/cgroup/cpu"

/** Puts `pid` in a cgroup of its own limited to `share` of one core; false when that is not possible. */
const limit = async (name: string, pid: number, share: number): Promise<boolean> => {
  const dir = path.join(cgroupRoot, name)
  try {
    await fs.mkdir(dir, { recursive: true })
    const period = Number((await fs.readFile(path.join(dir, "cpu.cfs_period_us"), "utf8")).trim())
    await fs.writeFile(path.join(dir, "cpu.cfs_quota_us"), String(Math.round(period * share)))
    await fs.writeFile(path.join(dir, "cgroup.procs"), String(pid))
    return true
  } catch {
    return false
  }
}

/** Periods of a runner's cgroup so far, and those in which it used up its share. */
const throttling = async (name: string): Promise<{ periods: number; throttled: number }> => {
  const stat = await fs.readFile(path.join(cgroupRoot, name, "cpu.stat"), "utf8").catch(() => "")
  return {
    periods: Number(/^nr_periods (\d+)/m.exec(stat)?.[1] ?? 0),
    throttled: Number(/^nr_throttled (\d+)/m.exec(stat)?.[1] ?? 0)
  }
}

/** The machine's CPU time so far, all cores: busy and idle (clock ticks). */
const machineTicks = async (): Promise<{ busy: number; idle: number }> => {
  const [user, nice, system, idle, iowait, irq, softirq, steal] = (await fs.readFile("/proc/stat", "utf8"))
    .split("\n")[0]!.trim().split(/\s+/).slice(1).map(Number)
  return { busy: user! + nice! + system! + irq! + softirq! + (steal ?? 0), idle: idle! + iowait! }
}

interface Counts {
  /** Orders the runners' desks took, and the messages they came in. */
  readonly orders: number
  readonly messages: number
  /** Orders the concert entities decided, and the batches they decided them in. */
  readonly batchOrders: number
  readonly batches: number
  /** The batches decided without a fiber (the express lane). */
  readonly express: number
}

/** What the runners' desks and concert entities did so far. */
const countsOf = async (ports: ReadonlyArray<number>): Promise<Counts> => {
  const counts = await Promise.all(ports.map(async (port): Promise<Counts> => {
    const { body } = await request(port, "GET", "/metrics")
    const value = (name: string) => Number(new RegExp(`^${name} (\\d+)`, "m").exec(body)?.[1] ?? 0)
    return {
      orders: value("ticketoverflow_desk_orders_total"),
      messages: value("ticketoverflow_desk_messages_total"),
      batchOrders: value("ticketoverflow_batch_orders_sum"),
      batches: value("ticketoverflow_batch_orders_count"),
      express: value("ticketoverflow_express_batches_total")
    }
  }))
  return counts.reduce((sum, c) => ({
    orders: sum.orders + c.orders,
    messages: sum.messages + c.messages,
    batchOrders: sum.batchOrders + c.batchOrders,
    batches: sum.batches + c.batches,
    express: sum.express + c.express
  }), { orders: 0, messages: 0, batchOrders: 0, batches: 0, express: 0 })
}

/** The concerts a runner owns: those whose figures its metrics show (a concert gone elsewhere reads 0). */
const ownedBy = async (port: number): Promise<Array<string>> =>
  [...(await request(port, "GET", "/metrics")).body.matchAll(/^ticketoverflow_concert_capacity\{[^}]*concert="([^"]+)"[^}]*\} (\S+)/gm)]
    .filter((m) => Number(m[2]) > 0)
    .map((m) => m[1]!)

const wrkScript = (concerts: ReadonlyArray<string>) => `
local concerts = { ${concerts.map((c) => `"${c}"`).join(", ")} }
local n = 0
request = function()
  n = n + 1
  local body = string.format('{"concert_id":"%s","user_id":"00000000-0000-0000-0000-%012d"}', concerts[(n % #concerts) + 1], (n % 5000) + 1)
  return wrk.format("POST", "/api/v1/tickets", { ["content-type"] = "application/json" }, body)
end
`

const wrk = (port: number, script: string, seconds: number, connections: number) =>
  new Promise<{ requests: number; non2xx: number; p99: string; p50: string }>((resolve, reject) =>
    execFile("wrk", ["-t", "1", "-c", String(connections), "-d", `${seconds}s`, "--latency", "-s", script, `http://127.0.0.1:${port}`],
      (error, stdout) => {
        if (error) return reject(error)
        const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0)
        const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0)
        const p99 = /^\s+99%\s+(\S+)/m.exec(stdout)?.[1] ?? "?"
        const p50 = /^\s+50%\s+(\S+)/m.exec(stdout)?.[1] ?? "?"
        resolve({ requests, non2xx, p99, p50 })
      }))

const startProcess = async (url: string, mode: "runner" | "client") => {
  const port = await freePort()
  const runnerPort = await freePort()
  // SCALE_PROFILE_DIR: each process writes a V8 CPU profile there when it stops.
  const profile = process.env.SCALE_PROFILE_DIR === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", process.env.SCALE_PROFILE_DIR]
  // The compiled service, as `npm start` and `npm run cluster` run it. Through tsx, each runner
  // spent seconds of its small CPU share transpiling its render thread's modules when the first
  // plan was drawn, in the middle of the measured run, and one missed its shard locks' refresh.
  const child = spawn(process.execPath, [...profile, ...serviceNodeArgs, "dist/main.js"], {
    cwd: root,
    env: {
      ...serviceEnv,
      ...process.env,
      DATABASE_URL: url,
      CLUSTER_MODE: mode,
      PORT: String(port),
      HOST: "127.0.0.1",
      RUNNER_HOST: "127.0.0.1",
      RUNNER_PORT: String(runnerPort),
      LOG_LEVEL: "warn",
      // The plans of the concerts under load are re-drawn once a minute, not every second:
      // this measures purchases, and renders would take the runners' small CPU shares.
      SEATING_REFRESH: "60 seconds"
    },
    stdio: ["ignore", "inherit", "inherit"]
  })
  return { child, port }
}

const healthy = async (port: number) => {
  for (let i = 0; ; i++) {
    if ((await request(port, "GET", "/api/v1/tickets/health").catch(() => undefined))?.status === 200) return
    if (i > 300) throw new Error(`the process on ${port} is not healthy`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

const stopAll = (children: ReadonlyArray<ChildProcess>) => {
  for (const child of children) child.kill("SIGTERM")
  return Promise.all(children.map((child) =>
    child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once("exit", r))
  ))
}

/**
 * What the hop costs: one runner and one HTTP-only process, each limited like the runners
 * above; the same load (8 connections unless told) sent to the runner itself, then through the
 * HTTP-only process, whose every order crosses to the runner's desk; with the CPU each process
 * took a purchase.
 */
const hop = async (url: string, share: number, scriptFile: string, seconds: number, connections: number) => {
  const runner = await startProcess(url, "runner")
  const client = await startProcess(url, "client")
  await limit("ticketoverflow-runner-1", runner.child.pid!, share)
  await limit("ticketoverflow-runner-2", client.child.pid!, share)
  try {
    await healthy(runner.port)
    await healthy(client.port)
    await new Promise((r) => setTimeout(r, 3000))
    const concerts: Array<string> = []
    for (let i = 0; i < 30; i++) concerts.push(await createConcert(runner.port, 10_000, `Hop ${i}`))
    await fs.writeFile(scriptFile, wrkScript(concerts))
    await wrk(runner.port, scriptFile, 3, connections)
    await wrk(client.port, scriptFile, 3, connections)
    const cpu = async () => ({ runner: await cpuSeconds(runner.child.pid!), client: await cpuSeconds(client.child.pid!) })
    const before = await cpu()
    const direct = await wrk(runner.port, scriptFile, seconds, connections)
    const between = await cpu()
    const through = await wrk(client.port, scriptFile, seconds, connections)
    const after = await cpu()
    /** Milliseconds of CPU a purchase. */
    const per = (seconds: number, requests: number) => (1000 * seconds) / Math.max(1, requests)
    return {
      direct: { ...direct, runnerCpu: per(between.runner - before.runner, direct.requests) },
      through: {
        ...through,
        runnerCpu: per(after.runner - between.runner, through.requests),
        clientCpu: per(after.client - between.client, through.requests)
      }
    }
  } finally {
    await stopAll([runner.child, client.child])
  }
}

export const scale = async (args: ReadonlyArray<string>) => {
  const share = Number(option(args, "share") ?? 0.4)
  const seconds = Number(option(args, "seconds") ?? 15)
  const concertCount = Number(option(args, "concerts") ?? 30)
  const connections = Number(option(args, "connections") ?? 256)
  const rounds = Number(option(args, "rounds") ?? 1)
  const routing = option(args, "routing") ?? "spread"
  if (routing !== "spread" && routing !== "owner") throw new Error(`--routing: spread or owner, not ${routing}`)
  const counts = option(args, "only") === "hop" ? [] : (option(args, "runners") ?? "1,2,3").split(",").map(Number)
  /** Purchases per second, by round and number of runners. */
  const measured: Array<Map<number, number>> = []
  /** The runners' CPU milliseconds per purchase, by round and number of runners. */
  const cpuCost: Array<Map<number, number>> = []
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" })
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-scale-"))
  await fs.chmod(dataDir, 0o755)
  const database = await startEmbeddedPostgres({ dataDir })
  const db = new pg.Client({ connectionString: database.url })
  await db.connect()
  const rows: Array<string> = []
  const scriptFile = path.join(dataDir, "purchase.lua")
  let limited = true
  try {
    // Rounds run the counts in turn, so that a slow or a fast moment of the machine is shared.
    for (const [round, count] of Array.from({ length: rounds }, (_, round) => counts.map((count) => [round, count] as const)).flat()) {
      if (measured[round] === undefined) measured[round] = new Map()
      if (cpuCost[round] === undefined) cpuCost[round] = new Map()
      const children: Array<ChildProcess> = []
      const ports: Array<number> = []
      for (let i = 0; i < count; i++) {
        const { child, port } = await startProcess(database.url, "runner")
        limited = (await limit(`ticketoverflow-runner-${i + 1}`, child.pid!, share)) && limited
        children.push(child)
        ports.push(port)
      }
      try {
        for (const port of ports) await healthy(port)
        // Let the shards settle over the runners before measuring.
        await new Promise((r) => setTimeout(r, 5000))
        const concerts: Array<string> = []
        for (let i = 0; i < concertCount; i++) concerts.push(await createConcert(ports[i % ports.length]!, 10_000, `Scale ${count}-${i}`))
        await fs.writeFile(scriptFile, wrkScript(concerts))
        // Warm-up, then the measured run.
        await Promise.all(ports.map((port) => wrk(port, scriptFile, 3, connections / 2)))
        // With --routing owner, each runner's buyers buy the concerts it owns (known once sold).
        const scripts = routing === "spread" ? ports.map(() => scriptFile) : await Promise.all(ports.map(async (port, i) => {
          const owned = await ownedBy(port)
          if (owned.length === 0) throw new Error(`--routing owner: runner ${i + 1} owns none of the ${concertCount} concerts`)
          const file = path.join(dataDir, `purchase-${i + 1}.lua`)
          await fs.writeFile(file, wrkScript(owned))
          return file
        }))
        // The warm-up's last orders are answered before the counts are read.
        await new Promise((r) => setTimeout(r, 2000))
        const before = Number((await db.query<{ n: string }>("SELECT count(*)::text AS n FROM tickets")).rows[0]!.n)
        const groups = children.map((_, i) => `ticketoverflow-runner-${i + 1}`)
        const cpuBefore = await Promise.all(children.map((child) => cpuSeconds(child.pid!)))
        const throttledBefore = await Promise.all(groups.map(throttling))
        const countsBefore = await countsOf(ports)
        const machineBefore = await machineTicks()
        const results = await Promise.all(ports.map((port, i) => wrk(port, scripts[i]!, seconds, connections)))
        const cpuUsed = (await Promise.all(children.map((child) => cpuSeconds(child.pid!)))).map((cpu, i) => cpu - cpuBefore[i]!)
        const throttled = (await Promise.all(groups.map(throttling))).map(({ periods, throttled }, i) =>
          (throttled - throttledBefore[i]!.throttled) / Math.max(1, periods - throttledBefore[i]!.periods)
        )
        const machineAfter = await machineTicks()
        const machineIdle = (machineAfter.idle - machineBefore.idle) /
          Math.max(1, machineAfter.idle - machineBefore.idle + machineAfter.busy - machineBefore.busy)
        const countsAfter = await countsOf(ports)
        const perMessage = (countsAfter.orders - countsBefore.orders) / Math.max(1, countsAfter.messages - countsBefore.messages)
        const perBatch = (countsAfter.batchOrders - countsBefore.batchOrders) / Math.max(1, countsAfter.batches - countsBefore.batches)
        const express = (countsAfter.express - countsBefore.express) / Math.max(1, countsAfter.batches - countsBefore.batches)
        const requests = results.reduce((n, r) => n + r.requests, 0)
        const crossed = (countsAfter.orders - countsBefore.orders) / Math.max(1, requests)
        // Requests still in flight when wrk stopped may be sold after it stopped counting.
        await new Promise((r) => setTimeout(r, 2000))
        const after = Number((await db.query<{ n: string }>("SELECT count(*)::text AS n FROM tickets")).rows[0]!.n)
        const oversold = Number((await db.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM (SELECT t.concert_id FROM tickets t JOIN concerts c ON c.id = t.concert_id
           GROUP BY t.concert_id, c.capacity HAVING count(*) > c.capacity) o`
        )).rows[0]!.n)
        // Each concert's seats are written by its owner alone: with few concerts, a runner that
        // owns more of them than the others is the first to be full.
        const owned = await Promise.all(ports.map(async (port) => (await ownedBy(port)).length))
        const non2xx = results.reduce((n, r) => n + r.non2xx, 0)
        const perSecond = requests / seconds
        measured[round]!.set(count, perSecond)
        // The runners' CPU for each answer, all threads: what the share buys, whatever the
        // machine's other tenants leave of it.
        const cpuPerPurchase = (1000 * cpuUsed.reduce((n, cpu) => n + cpu, 0)) / Math.max(1, requests)
        cpuCost[round]!.set(count, cpuPerPurchase)
        rows.push(
          `| ${rounds > 1 ? `${round + 1}: ` : ""}${count} | ${fmt(perSecond)} | ${owned.join(" / ")} | ` +
            `${cpuPerPurchase.toFixed(2)} ms | ${perBatch.toFixed(1)} | ${Math.round(100 * express)} % | ${count > 1 ? `${Math.round(100 * crossed)} %` : "–"} | ${count > 1 ? perMessage.toFixed(1) : "–"} | ${limited ? throttled.map((t) => `${Math.round(100 * t)} %`).join(" / ") : "–"} | ` +
            `${Math.round(100 * machineIdle)} % | ` +
            `${results.map((r) => r.p99).join(" / ")} | ${fmt(non2xx)} | ` +
            `${fmt(after - before)} tickets for ${fmt(requests - non2xx)} counted 2xx (the rest in flight when wrk stopped, ≤ ${connections * count} + warm-up's ${(connections / 2) * count}); ${oversold} concerts oversold |`
        )
        console.log(rows.at(-1))
      } finally {
        await stopAll(children)
      }
    }
    if (rounds > 1 || counts.length > 1) {
      const base = counts[0]!
      rows.push("")
      rows.push(`| × ${base} runner${base === 1 ? "" : "s"} | ${measured.map((_, round) => `round ${round + 1}`).join(" | ")} | all rounds |`)
      rows.push(`|---|${measured.map(() => "---|").join("")}---|`)
      const sum = (count: number) => measured.reduce((n, byCount) => n + (byCount.get(count) ?? 0), 0)
      for (const count of counts.slice(1)) {
        rows.push(
          `| ${count} | ${measured.map((byCount) => (byCount.get(count)! / byCount.get(base)!).toFixed(2)).join(" | ")} | ` +
            `**${(sum(count) / sum(base)).toFixed(2)}** |`
        )
      }
      // What the same shares would sell if each runner had all of its share: n shares over the
      // CPU a purchase costs with n runners, against one share over its cost with one.
      rows.push("")
      rows.push(`| × ${base} runner${base === 1 ? "" : "s"}, from CPU per purchase | ${measured.map((_, round) => `round ${round + 1}`).join(" | ")} | all rounds |`)
      rows.push(`|---|${measured.map(() => "---|").join("")}---|`)
      const mean = (count: number) => cpuCost.reduce((n, byCount) => n + (byCount.get(count) ?? 0), 0) / cpuCost.length
      for (const count of counts.slice(1)) {
        rows.push(
          `| ${count} | ${cpuCost.map((byCount) => ((count / base) * byCount.get(base)! / byCount.get(count)!).toFixed(2)).join(" | ")} | ` +
            `**${((count / base) * mean(base) / mean(count)).toFixed(2)}** |`
        )
      }
    }
    const hopConnections = Number(option(args, "hop-connections") ?? 8)
    const { direct, through } = await hop(database.url, share, scriptFile, seconds, hopConnections)
    rows.push("")
    rows.push(`| 1 runner, ${hopConnections} connections | purchases/s | p50 | p99 | runner's CPU a purchase | HTTP-only process's CPU a purchase |`)
    rows.push("|---|---|---|---|---|---|")
    rows.push(`| to the runner itself | ${fmt(direct.requests / seconds)} | ${direct.p50} | ${direct.p99} | ${direct.runnerCpu.toFixed(2)} ms | – |`)
    rows.push(
      `| through an HTTP-only process | ${fmt(through.requests / seconds)} | ${through.p50} | ${through.p99} | ` +
        `${through.runnerCpu.toFixed(2)} ms | ${through.clientCpu.toFixed(2)} ms |`
    )
  } finally {
    await db.end()
    await database.stop()
    await fs.rm(dataDir, { recursive: true, force: true })
    for (let i = 1; i <= 3; i++) await fs.rmdir(path.join(cgroupRoot, `ticketoverflow-runner-${i}`)).catch(() => undefined)
  }
  console.log(`\nEach runner ${limited ? `limited to ${share} of a core (cgroup v1 cpu)` : "NOT limited (no writable cgroup v1 cpu controller)"}; ${seconds} s of wrk per runner, ${connections} connections each, ${routing === "spread" ? "buyers spread over every concert" : "buyers sent to their concert's runner"}.`)
  console.log("| runners | purchases/s | concerts each owns | runners' CPU a purchase | orders an entity batch | batches without a fiber | purchases crossed | orders a desk message | periods throttled | machine idle | p99 per runner | non-2xx | exactness |")
  console.log("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
  for (const row of rows) console.log(row)
}
