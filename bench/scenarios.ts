/**
 * `npm run bench -- <q1…q8|burst> [options]`: the course's quality scenarios, shaped as its k6
 * tests were (purchasers: GET user → POST ticket → GET ticket → think; staff polling seating
 * plans), with a progress bar while they run and a report at the end, checked against the
 * database: tickets per concert ≤ capacity and equal to the 201s. Q8 counts purchases: its
 * 256 buyers only POST tickets, back to back, while staff poll seating plans.
 *
 * Options: --url http://host:port (a running service; its database via DATABASE_URL, or no
 * database checks), --duration SECONDS (Q1, Q2), --scale S (Q8: 2.8 million × S purchases),
 * --requests N and --capacity C (burst).
 */
import { execFile, spawn } from "node:child_process"
import * as os from "node:os"
import type pg from "pg"
import type { PurchasersOptions, PurchasersResult } from "./purchasers.js"
import { buy, createConcert, databaseWork, fmt, option, printAll, request, root, startTarget, type Target } from "./shared.js"


const bar = (done: number, total: number, label: string) => {
  const width = 30
  const filled = Math.round(Math.min(1, total > 0 ? done / total : 0) * width)
  const line = `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${label}`
  if (process.stderr.isTTY) process.stderr.write(`\r${line}`)
  else process.stderr.write(`${line}\n`)
}

/** Runs the virtual users in their own process, drawing the progress bar from its reports. */
const purchasers = (target: Target, o: Omit<PurchasersOptions, "host" | "port">) =>
  new Promise<PurchasersResult>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/purchasers.ts", JSON.stringify({ ...o, host: target.host, port: target.port })], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"]
    })
    let buffer = ""
    let lastBar = 0
    child.stdout?.on("data", (chunk: Buffer) => {
      buffer += chunk.toString()
      let newline: number
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline)
        buffer = buffer.slice(newline + 1)
        const message = JSON.parse(line) as { progress?: { attempts: number; purchases: number; elapsedMs: number }; result?: PurchasersResult }
        if (message.progress !== undefined) {
          const { attempts, elapsedMs, purchases } = message.progress
          const byCount = Number.isFinite(o.iterations) ? attempts / o.iterations : 0
          const byTime = elapsedMs / o.durationMs
          if (process.stderr.isTTY || elapsedMs - lastBar >= 5000) {
            lastBar = elapsedMs
            bar(Math.max(byCount, byTime), 1, `${fmt(purchases)} purchases, ${fmt(elapsedMs / 1000, 0)} s, RSS ${fmt(target.peakRssMb())} MB`)
          }
        }
        if (message.result !== undefined) {
          if (process.stderr.isTTY) process.stderr.write("\n")
          resolve(message.result)
        }
      }
    })
    child.on("exit", (code) => code === 0 ? undefined : reject(new Error(`load generator exited ${code}`)))
  })

interface Check {
  readonly concertId: string
  readonly capacity: number
}

const report = async (
  name: string,
  target: Target,
  result: PurchasersResult,
  concerts: ReadonlyArray<Check>,
  expectSold: number | undefined,
  extra: ReadonlyArray<string>
) => {
  const lines = [`${name}, ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}`, ""]
  lines.push("| operation | count | statuses | p50 / p90 / p99 / max ms |", "|---|---|---|---|")
  for (const [op, s] of Object.entries(result.ops)) {
    lines.push(`| ${op} | ${fmt(s.count)} | ${Object.entries(s.statuses).map(([c, n]) => `${fmt(n)}×${c === "0" ? "transport error" : c}`).join(", ")} | ` +
      `${fmt(s.p50, 1)} / ${fmt(s.p90, 1)} / ${fmt(s.p99, 1)} / ${fmt(s.max, 1)} |`)
  }
  const purchases = result.ops["POST ticket"]
  const ok = purchases?.statuses["201"] ?? 0
  const all = Object.values(result.ops).flatMap((s) => Object.entries(s.statuses))
  const serverErrors = all.filter(([c]) => c.startsWith("5")).reduce((sum, [, n]) => sum + n, 0)
  const transport = all.filter(([c]) => c === "0").reduce((sum, [, n]) => sum + n, 0)
  lines.push(
    "",
    `purchases: ${fmt(purchases?.count ?? 0)} in ${fmt(result.wallMs / 1000, 1)} s (${fmt((purchases?.count ?? 0) / (result.wallMs / 1000))}/s), ` +
      `${fmt(ok)} × 201; successful purchases p99 ${fmt(result.okPurchaseP99, 1)} ms`,
    `5xx: ${serverErrors}, transport errors: ${transport}`
  )
  if (target.db !== undefined) {
    const counts = await target.db.query<{ id: string; n: number }>(
      "SELECT c.id, count(t.id)::int AS n FROM concerts c LEFT JOIN tickets t ON t.concert_id = c.id WHERE c.id = ANY($1) GROUP BY c.id",
      [concerts.map((c) => c.concertId)]
    )
    const sold = counts.rows.reduce((sum, r) => sum + r.n, 0)
    const oversold = counts.rows.filter((r) => r.n > (concerts.find((c) => c.concertId === r.id)?.capacity ?? 0)).length
    lines.push(`database: ${fmt(sold)} tickets for ${fmt(ok)} × 201 (${sold === ok ? "equal" : "DIFFERENT"}), ${oversold} concerts oversold` +
      (expectSold === undefined ? "" : `; expected ${fmt(expectSold)} sold: ${sold === expectSold ? "yes" : "NO"}`))
  } else {
    lines.push("database: not checked (no DATABASE_URL for the --url target)")
  }
  if (target.peakRssMb() > 0) lines.push(`service peak RSS: ${fmt(target.peakRssMb())} MB`)
  lines.push(...extra, "")
  process.stdout.write(lines.join("\n"))
}

const commitsAndWal = async (db: pg.Client | undefined) => {
  if (db === undefined) return async () => ""
  const work = await databaseWork(db)
  return async (purchases: number) => {
    const { commits, walBytes } = await work()
    return `PostgreSQL: ${fmt(commits / Math.max(purchases, 1), 3)} commits and ` +
      `${fmt(walBytes / Math.max(purchases, 1))} WAL bytes per purchase`
  }
}

type Scenario = (target: Target, args: ReadonlyArray<string>) => Promise<void>

const shaped = (name: string, capacities: ReadonlyArray<number>, o: {
  vus: number
  iterations?: number
  durationSeconds?: number
  thinkMs: number
  print?: boolean
  staff?: number
  expectAll?: boolean
}): Scenario => async (target, args) => {
  const concerts = await Promise.all(capacities.map(async (capacity, i) => ({ concertId: await createConcert(target.port, capacity, `${name} ${i + 1}`), capacity })))
  const durationSeconds = Number(option(args, "duration") ?? o.durationSeconds ?? 3600)
  const finish = await commitsAndWal(target.db)
  const result = await purchasers(target, {
    concerts: concerts.map((c) => c.concertId),
    vus: o.vus,
    iterations: o.iterations ?? Number.MAX_SAFE_INTEGER,
    durationMs: durationSeconds * 1000,
    thinkMs: o.thinkMs,
    print: o.print ?? false,
    staff: o.staff ?? 0,
    staffPollMs: 1000
  })
  const expected = o.expectAll === true ? capacities.reduce((a, b) => a + b, 0) : undefined
  await report(name, target, result, concerts, expected, [await finish(result.ops["POST ticket"]?.count ?? 0)])
}

/** Polls until every ticket's print is served; returns how long that took. */
const untilPrinted = async (target: Target, ids: ReadonlyArray<string>, timeoutMs = 600_000) => {
  const started = performance.now()
  const waiting = new Set(ids)
  while (waiting.size > 0) {
    if (performance.now() - started > timeoutMs) throw new Error(`${waiting.size} tickets not printed in time`)
    for (const id of [...waiting].slice(0, 200)) {
      if ((await request(target.port, "GET", `/api/v1/tickets/${id}/print`)).status === 200) waiting.delete(id)
    }
    bar(ids.length - waiting.size, ids.length, `${ids.length - waiting.size} of ${ids.length} printed`)
  }
  if (process.stderr.isTTY) process.stderr.write("\n")
  return performance.now() - started
}

const scenarios: Record<string, Scenario> = {
  q6: async (target) => {
    const today = new Date().toISOString().slice(0, 10)
    const nextYear = `${Number(today.slice(0, 4)) + 1}${today.slice(4)}`
    const far = await createConcert(target.port, 2000, "Q6 next year", nextYear)
    const tonight = await createConcert(target.port, 50, "Q6 tonight", today)
    const farTickets = await buy(target.port, far, 1700)
    await printAll(target.port, farTickets)
    const tonightTickets = await buy(target.port, tonight, 50)
    await printAll(target.port, tonightTickets)
    const tonightMs = await untilPrinted(target, tonightTickets)
    const farDone = target.db === undefined ? undefined : (await target.db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM tickets WHERE concert_id = $1 AND print_status = 'PRINTED'", [far])).rows[0]?.n
    const farMs = await untilPrinted(target, farTickets)
    process.stdout.write([
      `Q6 priority tickets, ${new Date().toISOString()}`,
      "",
      `1,700 tickets for next year bought and sent to print, then 50 for tonight:`,
      `- all 50 of tonight's printed ${fmt(tonightMs)} ms after the last was sent to print` +
        (farDone === undefined ? "" : `; by then ${fmt(farDone)} of the 1,700 were printed`),
      `- the rest of next year's printed ${fmt(farMs / 1000, 1)} s later`,
      ""
    ].join("\n"))
  },
  q7: async (target) => {
    const concertId = await createConcert(target.port, 3000, "Elsa on Ice")
    const started = performance.now()
    const tickets = await buy(target.port, concertId, 1000)
    await printAll(target.port, tickets)
    const boughtMs = performance.now() - started
    await untilPrinted(target, tickets)
    const renamed = await request(target.port, "PUT", `/api/v1/concerts/${concertId}`, JSON.stringify({ name: "Bob on Ice" }))
    const still = (await Promise.all(tickets.slice(0, 200).map((id) => request(target.port, "GET", `/api/v1/tickets/${id}/print`))))
      .filter((r) => r.status === 200).length
    await printAll(target.port, tickets)
    const reprintMs = await untilPrinted(target, tickets)
    const svgs = await Promise.all(tickets.map((id) => request(target.port, "GET", `/api/v1/tickets/${id}/print`)))
    const old = svgs.filter((r) => r.body.includes(">Elsa on Ice<")).length
    const fresh = svgs.filter((r) => r.body.includes(">Bob on Ice<")).length
    process.stdout.write([
      `Q7 copyright rename, ${new Date().toISOString()}`,
      "",
      `- 1,000 tickets bought and sent to print in ${fmt(boughtMs / 1000, 1)} s; rename answered ${renamed.status}`,
      `- right after the rename, ${still} of 200 sampled tickets still served a printed SVG (must be 0)`,
      `- all 1,000 reprinted in ${fmt(reprintMs / 1000, 1)} s: ${fresh} show "Bob on Ice", ${old} show "Elsa on Ice" (must be 0)`,
      ""
    ].join("\n"))
  },
  q1: shaped("Q1 small concert", [850], { vus: 50, durationSeconds: 60, thinkMs: 1000 }),
  q2: shaped("Q2 pre-sale", [2000], { vus: 100, durationSeconds: 30, thinkMs: 500 }),
  q3: shaped("Q3 general sale", [3000], { vus: 250, iterations: 6000, thinkMs: 200, expectAll: true }),
  q4: shaped("Q4 seating plan launch", [3000], { vus: 250, iterations: 6000, thinkMs: 200, staff: 20, expectAll: true }),
  q5: shaped("Q5 evening shows", [3000, 2000, 1500], { vus: 250, iterations: 9000, thinkMs: 200, print: true, staff: 10, expectAll: true }),
  burst: async (target, args) => {
    const requests = Number(option(args, "requests") ?? 10_000)
    const capacity = Number(option(args, "capacity") ?? 500)
    const concertId = await createConcert(target.port, capacity, "Burst")
    const finish = await commitsAndWal(target.db)
    bar(0, 1, `${fmt(requests)} purchases issued at once`)
    const burst = await new Promise<{ wallMs: number; histogram: Record<string, number>; p50: number; p90: number; p99: number; max: number; okP99: number }>(
      (resolve, reject) =>
        execFile(process.execPath, ["--import", "tsx", "bench/load.ts", JSON.stringify({
          port: target.port, concerts: [concertId], requests, connections: 1000, burst: true
        })], { cwd: root }, (error, stdout) => error ? reject(error) : resolve(JSON.parse(stdout.trim().split("\n").at(-1)!)))
    )
    bar(1, 1, "done\n")
    const result: PurchasersResult = {
      wallMs: burst.wallMs,
      attempts: requests,
      ops: { "POST ticket": { count: requests, statuses: burst.histogram, p50: burst.p50, p90: burst.p90, p99: burst.p99, max: burst.max } },
      okPurchaseP99: burst.okP99,
      perSecond: []
    }
    const winners = result.okPurchaseP99 / result.wallMs
    await report(`burst: ${fmt(requests)} purchases at a concert of ${fmt(capacity)}`, target, result, [{ concertId, capacity }], capacity, [
      `successful purchases p99 / burst wall time: ${fmt(winners, 2)} (target ≤ 0.3)`,
      await finish(requests)
    ])
  },
  q8: async (target, args) => {
    const scale = Number(option(args, "scale") ?? 1)
    const total = Math.round(2_800_000 * scale)
    const capacity = Math.min(150_000, Math.ceil(total / 24))
    const concerts = await Promise.all(Array.from({ length: 24 }, async (_, i) => ({ concertId: await createConcert(target.port, capacity, `World tour ${i + 1}`), capacity })))
    const finish = await commitsAndWal(target.db)
    const result = await purchasers(target, {
      concerts: concerts.map((c) => c.concertId), vus: 256, iterations: total, durationMs: 24 * 3_600_000, thinkMs: 0, print: false, purchaseOnly: true, staff: 4, staffPollMs: 5000
    })
    const tenth = Math.max(1, Math.ceil(result.perSecond.length / 10))
    const over = Array.from({ length: Math.ceil(result.perSecond.length / tenth) }, (_, i) => {
      const slice = result.perSecond.slice(i * tenth, (i + 1) * tenth)
      return fmt(slice.reduce((a, b) => a + b, 0) / slice.length)
    })
    await report(`Q8 world tour: ${fmt(total)} purchases over 24 concerts of ${fmt(capacity)}`, target, result, concerts, undefined, [
      `purchases/s over time (tenths of the run): ${over.join(", ")}`,
      await finish(total)
    ])
  }
}

export const runScenario = async (name: string, args: ReadonlyArray<string>) => {
  const scenario = scenarios[name]
  if (scenario === undefined) throw new Error(`unknown scenario ${name}; try: ${Object.keys(scenarios).join(", ")}, purchases, renders`)
  const target = await startTarget(args)
  try {
    await scenario(target, args)
  } finally {
    await target.stop()
  }
}
