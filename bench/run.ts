/**
 * `npm run bench -- <scenario> [--rounds N]`. Starts its own PostgreSQL (durable settings, as
 * `npm start`) unless DATABASE_URL is set, the service as a child process, and drives it from
 * another process over loopback.
 *
 * purchases: throughput and latency beside raw `node:http` answering a constant body, the same
 *   constant answered by `@effect/platform` (a plain HttpApp, and an HttpApi endpoint), and the
 *   baselines (b) SKIP LOCKED and (c) counter behind the service's HTTP stack:
 *   (a) 20,000 purchases over 20 concerts (capacity 1,000 each), 256 connections;
 *   (b) a 10,000-request burst on one concert of capacity 500, all issued at once.
 *   Checks the database afterwards: never more tickets than capacity, tickets = 201s.
 * renders: the same (a) alone and then while 1,000 tickets print and a 150,000-seat plan keeps
 *   re-rendering; time to PRINTED for tonight's ticket behind 2,000 next-year prints; how soon
 *   a new concert's plan appears and how soon it shows new purchases.
 * ladder [--base REV] [--rounds N] [--seconds S] [--concerts N]: where a purchase's cost goes,
 *   from raw node:http and the empty HttpApi endpoint up to the full service, step by step
 *   (`bench/ladder.ts`).
 * ab --base REV [--watch]: purchases per second of commit REV and of this checkout, side by side
 *   (`bench/ab.ts`). reservations: bursts of reservations beside purchases, checkouts with
 *   recycling (`bench/reservations.ts`). draw: 100,000 registrations, then the draw
 *   (`bench/draw.ts`). scale: 1, 2, 3 runners, each limited to the same CPU share
 *   (`bench/scale.ts`). hostile: one client's attacks beside buyers (`bench/hostile.ts`).
 * organisers: purchases in the main database, in one organiser's, and across 100 organisers'
 *   (`bench/organisers.ts`).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as os from "node:os"
import type pg from "pg"
import { freePort } from "../src/sql/EmbeddedPostgres.js"
import { runScenario } from "./scenarios.js"
import { hostile } from "./hostile.js"
import { ab } from "./ab.js"
import { organisers } from "./organisers.js"
import { ladder } from "./ladder.js"
import { draw } from "./draw.js"
import { reservations } from "./reservations.js"
import { scale } from "./scale.js"
import { serviceEnv, serviceNodeArgs } from "../src/Settings.js"
import { bundled, buy, createConcert, databaseWork, fmt, load, option, printAll, request, root, startTarget } from "./shared.js"

const args = process.argv.slice(2)
// Every option takes a value: the scenario is the first argument that is neither.
const scenario = args.find((a, i) => !a.startsWith("--") && !args[i - 1]?.startsWith("--")) ?? "purchases"
const rounds = Number(option(args, "rounds") ?? 1) || 1

/**
 * Every server runs with the service's Node settings (`npm start`) and bundled as it is, so
 * ratios compare code.
 */
const child = async (script: string, env: Record<string, string>): Promise<ChildProcess> =>
  spawn(process.execPath, [...serviceNodeArgs, await bundled(script)], {
    cwd: root,
    env: { ...serviceEnv, ...process.env, LOG_LEVEL: "warn", ...env },
    stdio: ["ignore", "pipe", "inherit"]
  })

const waitHealthy = async (port: number, pathname: string) => {
  for (let i = 0; i < 300; i++) {
    const response = await request(port, "GET", pathname).catch(() => undefined)
    if (response !== undefined && response.status < 500) return
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  throw new Error(`nothing healthy on port ${port}`)
}

const main = async () => {
  if (scenario === "hostile") return hostile(args)
  if (scenario === "ab") return ab(args)
  if (scenario === "organisers") return organisers(args)
  if (scenario === "ladder") return ladder(args)
  if (scenario === "reservations") return reservations(args)
  if (scenario === "draw") return draw(args)
  if (scenario === "scale") return scale(args)
  if (scenario !== "purchases" && scenario !== "renders") return runScenario(scenario, args)
  const cleanup: Array<() => Promise<void>> = []
  try {
    const target = await startTarget(args)
    cleanup.push(target.stop)
    const { databaseUrl, db } = target
    if (db === undefined) throw new Error(`the ${scenario} benchmark reads the database: set DATABASE_URL with --url`)
    const servicePort = target.port
    const rawPort = await freePort()
    const raw = await child("bench/rawServer.ts", { PORT: String(rawPort) })
    cleanup.push(async () => void raw.kill("SIGTERM"))
    await waitHealthy(rawPort, "/")
    const ceilings = { app: await freePort(), api: await freePort() }
    if (scenario === "purchases") {
      for (const [mode, port] of Object.entries(ceilings)) {
        const server = await child("bench/ceilingServer.ts", { PORT: String(port), CEILING: mode })
        cleanup.push(async () => void server.kill("SIGTERM"))
        await waitHealthy(port, "/")
      }
    }

    // Warm both up (JIT, connection pools, entity activation paths).
    const warm = await createConcert(servicePort, 150_000, "warm-up")
    await load({ port: servicePort, concerts: [warm], requests: 3000, connections: 64, burst: false })
    await load({ port: rawPort, concerts: [warm], requests: 3000, connections: 64, burst: false })

    if (scenario === "renders") {
      process.stdout.write(await renders(servicePort, db))
      return
    }

    const baselines = { skiplocked: await freePort(), counter: await freePort() }
    for (const [mode, port] of Object.entries(baselines)) {
      const server = await child("bench/baselineServer.ts", { DATABASE_URL: databaseUrl, PORT: String(port), BASELINE: mode })
      cleanup.push(async () => void server.kill("SIGTERM"))
      await waitHealthy(port, "/")
    }
    /** A concert the baselines sell from: a counter row and a pre-filled seat table. */
    const baselineConcert = async (capacity: number) => {
      const id = crypto.randomUUID()
      await db.query("INSERT INTO bench_concerts (id, capacity) VALUES ($1, $2)", [id, capacity])
      await db.query("INSERT INTO bench_seats (concert_id, seat_no) SELECT $1, g FROM generate_series(1, $2) g", [id, capacity])
      return id
    }
    for (const port of Object.values(ceilings)) {
      await load({ port, concerts: [warm], requests: 3000, connections: 64, burst: false })
    }
    await load({ port: baselines.skiplocked, concerts: [await baselineConcert(150_000)], requests: 3000, connections: 64, burst: false })
    await load({ port: baselines.counter, concerts: [await baselineConcert(150_000)], requests: 3000, connections: 64, burst: false })

    /** One load against one target, with PostgreSQL's commits and WAL bytes over the run. */
    const measure = async (port: number, concerts: ReadonlyArray<string>, requests: number, connections: number, burst: boolean) => {
      const work = await databaseWork(db)
      const result = await load({ port, concerts, requests, connections, burst })
      return { ...result, ...(await work()) }
    }
    type Measured = Awaited<ReturnType<typeof measure>>

    const rows: Array<string> = []
    const checks: Array<string> = []
    for (let round = 1; round <= rounds; round++) {
      const run = async (label: string, capacity: number, count: number, requests: number, connections: number, burst: boolean) => {
        const serviceConcerts = await Promise.all(Array.from({ length: count }, (_, i) => createConcert(servicePort, capacity, `${label} ${round}.${i}`)))
        const skipConcerts = await Promise.all(Array.from({ length: count }, () => baselineConcert(capacity)))
        const counterConcerts = await Promise.all(Array.from({ length: count }, () => baselineConcert(capacity)))
        const results: Array<[string, Measured]> = [
          ["TicketOverflow", await measure(servicePort, serviceConcerts, requests, connections, burst)],
          ["raw node:http", await measure(rawPort, serviceConcerts, requests, connections, burst)],
          ["constant: HttpApp", await measure(ceilings.app, serviceConcerts, requests, connections, burst)],
          ["constant: HttpApi", await measure(ceilings.api, serviceConcerts, requests, connections, burst)],
          ["(b) SKIP LOCKED", await measure(baselines.skiplocked, skipConcerts, requests, connections, burst)],
          ["(c) counter", await measure(baselines.counter, counterConcerts, requests, connections, burst)]
        ]
        const own = results[0]![1]
        const constant = (target: string) => target === "raw node:http" || target.startsWith("constant")
        for (const [target, r] of results) {
          const ok = r.histogram["201"] ?? 0
          rows.push(
            `| ${round} | ${label} | ${target} | ${fmt(r.perSecond)} | ${fmt(r.perSecond / own.perSecond, 2)} | ` +
              `${fmt(r.p50, 1)} / ${fmt(r.p90, 1)} / ${fmt(r.p99, 1)} / ${fmt(r.max, 1)} | ${fmt(r.okP99, 1)} (${fmt(r.okP99 / r.wallMs, 2)}× wall) | ` +
              `${constant(target) ? "–" : fmt(r.commits / requests, 3)} | ` +
              `${constant(target) ? "–" : fmt(r.walBytes / Math.max(ok, 1))} | ` +
              `${Object.entries(r.histogram).map(([s, n]) => `${n}×${s === "0" ? "transport error" : s}`).join(", ")} |`
          )
        }
        const counts = await db.query<{ n: number; capacity: number }>(
          `SELECT count(t.id)::int AS n, c.capacity FROM concerts c LEFT JOIN tickets t ON t.concert_id = c.id
           WHERE c.id = ANY($1) GROUP BY c.id, c.capacity`,
          [serviceConcerts]
        )
        const sold = counts.rows.reduce((sum, r) => sum + r.n, 0)
        const oversold = counts.rows.filter((r) => r.n > r.capacity).length
        const failures = Object.entries(own.histogram).filter(([s]) => s === "0" || s.startsWith("5"))
        checks.push(`round ${round}, ${label}: ${sold} tickets in the database for ${own.histogram["201"] ?? 0} × 201, ` +
          `${oversold} concerts oversold, 5xx and transport errors: ${failures.map(([s, n]) => `${n}×${s}`).join(", ") || "none"}` +
          (Object.keys(own.errors).length > 0 ? ` (${JSON.stringify(own.errors)})` : ""))
      }
      await run("(a) 20k over 20 concerts", 1000, 20, 20_000, 256, false)
      await run("(b) 10k burst, cap 500", 500, 1, 10_000, 1000, true)
    }

    process.stdout.write([
      `purchases benchmark, ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, ${fmt(os.totalmem() / 2 ** 30)} GiB, node ${process.version}`,
      "",
      "| round | load | target | req/s | × TicketOverflow | p50 / p90 / p99 / max ms | 201s p99 ms | commits / request | WAL bytes / ticket | statuses |",
      "|---|---|---|---|---|---|---|---|---|---|",
      ...rows,
      "",
      ...checks,
      ""
    ].join("\n"))
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => undefined)
  }
}

const waitFor = async (what: string, check: () => Promise<boolean>, timeoutMs = 300_000) => {
  const started = performance.now()
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return performance.now() - started
}

const printedCount = async (db: pg.Client, concertId: string) =>
  (await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM tickets WHERE concert_id = $1 AND print_status = 'PRINTED'",
    [concertId]
  )).rows[0]?.n ?? 0

const renders = async (port: number, db: pg.Client): Promise<string> => {
  const lines: Array<string> = []
  const tput = async (label: string, extra: ReadonlyArray<string>) => {
    const concerts = await Promise.all(Array.from({ length: 20 }, (_, i) => createConcert(port, 1000, `${label} ${i}`)))
    const r = await load({ port, concerts: [...concerts, ...extra], requests: 20_000, connections: 256, burst: false })
    return r
  }

  const quiet = await tput("quiet", [])

  // Load: a 150,000-seat concert that keeps selling (so its plan re-renders every sweep) and
  // 1,000 tickets of another concert printing.
  const stadium = await createConcert(port, 150_000, "Stadium")
  const printing = await createConcert(port, 2000, "Printing")
  const toPrint = await buy(port, printing, 1000)
  await printAll(port, toPrint)
  const busy = await tput("busy", [stadium])
  const printedDuring = await printedCount(db, printing)
  await waitFor("the 1,000 prints", async () => (await printedCount(db, printing)) === 1000)

  // Q6: tonight's ticket behind 2,000 prints for next year.
  const nextYear = await createConcert(port, 5000, "Next year")
  const tonight = await createConcert(port, 10, "Tonight")
  await db.query("UPDATE concerts SET date = $2 WHERE id = $1", [nextYear, "2099-12-31"])
  await db.query("UPDATE concerts SET date = $2 WHERE id = $1", [tonight, new Date().toISOString().slice(0, 10)])
  const backlog = await buy(port, nextYear, 2000)
  const [urgent] = await buy(port, tonight, 1)
  const backlogStarted = performance.now()
  await printAll(port, backlog)
  const urgentAsked = performance.now()
  await request(port, "POST", `/api/v1/tickets/${urgent}/print`)
  const urgentMs = await waitFor("tonight's ticket", async () =>
    (await request(port, "GET", `/api/v1/tickets/${urgent}/print`)).status === 200)
  const backlogDoneWhenUrgent = await printedCount(db, nextYear)
  const backlogMs = (await waitFor("the backlog", async () => (await printedCount(db, nextYear)) === 2000)) +
    (urgentAsked - backlogStarted) + urgentMs

  // Seating freshness.
  const fresh = await createConcert(port, 3000, "Fresh plan")
  const firstPlanMs = await waitFor("the first plan", async () =>
    (await request(port, "GET", `/api/v1/concerts/${fresh}/seats`)).status === 200)
  await buy(port, fresh, 10)
  const catchUpMs = await waitFor("the plan to show 10 sold", async () =>
    (await request(port, "GET", `/api/v1/concerts/${fresh}/seats`)).body.includes(`|3000|10<`))
  const bigPlanMs = await waitFor("the 150,000-seat plan", async () =>
    (await request(port, "GET", `/api/v1/concerts/${stadium}/seats`)).status === 200)

  lines.push(
    `renders benchmark, ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
    "",
    "| purchases (a), 20k over 20 concerts | req/s | p50 / p99 ms | statuses |",
    "|---|---|---|---|",
    `| alone | ${fmt(quiet.perSecond)} | ${fmt(quiet.p50, 1)} / ${fmt(quiet.p99, 1)} | ${JSON.stringify(quiet.histogram)} |`,
    `| while 1,000 tickets print and a 150,000-seat plan re-renders | ${fmt(busy.perSecond)} | ${fmt(busy.p50, 1)} / ${fmt(busy.p99, 1)} | ${JSON.stringify(busy.histogram)} |`,
    `| ratio busy / alone | ${fmt(busy.perSecond / quiet.perSecond, 2)} | p99 ${fmt(busy.p99 / quiet.p99, 2)} | |`,
    "",
    `prints finished during the busy run: ${printedDuring} of 1,000`,
    `tonight's ticket behind 2,000 next-year prints: PRINTED ${fmt(urgentMs)} ms after it was asked for; ` +
      `${backlogDoneWhenUrgent} of the 2,000 were printed by then; the whole backlog took ${fmt(backlogMs / 1000, 1)} s`,
    `seating: a new 3,000-seat concert's first plan after ${fmt(firstPlanMs)} ms; 10 purchases shown after ${fmt(catchUpMs)} ms; ` +
      `the 150,000-seat plan served ${fmt(bigPlanMs)} ms after the busy run ended`,
    ""
  )
  return lines.join("\n")
}

main().catch((error) => {
  process.stderr.write(`${String(error)}\n`)
  process.exitCode = 1
})
