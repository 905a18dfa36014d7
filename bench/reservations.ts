/**
 * `npm run bench -- reservations`: a burst of 10,000 `POST /reservations` (quantities 1..10,
 * all issued at once over 256 connections) on one concert of 5,000 seats, beside a burst of
 * 10,000 plain purchases on another concert of 5,000 in the same run; PostgreSQL commits per
 * request for each; then checkouts per second with recycling: 2,000 holds checked out, half
 * of them cancelled (their numbers go back to the pool), then 1,000 more checked out, which
 * take the recycled numbers first.
 */
import * as http from "node:http"
import { createConcert, databaseWork, fmt, request, startTarget } from "./shared.js"

const user = (i: number) => `00000000-0000-0000-0000-${String((i % 5000) + 1).padStart(12, "0")}`

const send = (agent: http.Agent, port: number, method: string, path: string, body?: string) =>
  new Promise<{ status: number; body: string; ms: number }>((resolve, reject) => {
    const started = performance.now()
    const req = http.request(
      { host: "127.0.0.1", port, method, path, agent, headers: body === undefined ? {} : { "content-type": "application/json" } },
      (res) => {
        const chunks: Array<Buffer> = []
        res.on("data", (chunk: Buffer) => chunks.push(chunk))
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

const percentile = (values: ReadonlyArray<number>, p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0
}

/** `count` requests all at once (256 connections), with their statuses, rate and p99. */
const burst = async (agent: http.Agent, port: number, path: string, body: (i: number) => string, count: number) => {
  const started = performance.now()
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => send(agent, port, "POST", path, body(i))))
  const wall = performance.now() - started
  const histogram: Record<number, number> = {}
  for (const a of answers) histogram[a.status] = (histogram[a.status] ?? 0) + 1
  return { answers, histogram, perSecond: count / (wall / 1000), p99: percentile(answers.map((a) => a.ms), 0.99), wall }
}

export const reservations = async (args: ReadonlyArray<string>) => {
  const target = await startTarget(args)
  try {
    const { db, port } = target
    if (db === undefined) throw new Error("the reservations benchmark reads the database")
    const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
    const reserved = await createConcert(port, 5000, "Reservations")
    const bought = await createConcert(port, 5000, "Purchases")
    const checkouts = await createConcert(port, 5000, "Checkouts")
    // Warm-up: the code paths compiled, the entities started.
    await burst(agent, port, "/api/v1/reservations", (i) => JSON.stringify({ concert_id: checkouts, user_id: user(i), quantity: 1 }), 200)

    let work = await databaseWork(db)
    const holds = await burst(agent, port, "/api/v1/reservations", (i) =>
      JSON.stringify({ concert_id: reserved, user_id: user(i), quantity: (i * 7919 % 10) + 1 }), 10_000)
    const holdWork = await work()
    work = await databaseWork(db)
    const purchases = await burst(agent, port, "/api/v1/tickets", (i) => JSON.stringify({ concert_id: bought, user_id: user(i) }), 10_000)
    const purchaseWork = await work()
    const heldSeats = holds.answers.filter((a) => a.status === 201)
      .reduce((n, a) => n + (JSON.parse(a.body) as { quantity: number }).quantity, 0)

    // Checkouts with recycling.
    const made = await burst(agent, port, "/api/v1/reservations", (i) =>
      JSON.stringify({ concert_id: checkouts, user_id: user(i), quantity: 1 }), 3000)
    const ids = made.answers.filter((a) => a.status === 201).map((a) => (JSON.parse(a.body) as { id: string }).id)
    const step = async (batch: ReadonlyArray<string>, method: string, suffix: string) => {
      const started = performance.now()
      const answers = await Promise.all(batch.map((id) => send(agent, port, method, `/api/v1/reservations/${id}${suffix}`)))
      return { perSecond: batch.length / ((performance.now() - started) / 1000), answers }
    }
    const first = await step(ids.slice(0, 2000), "POST", "/checkout")
    await step(ids.slice(0, 1000), "DELETE", "")
    const second = await step(ids.slice(2000, 3000), "POST", "/checkout")
    const invoices = JSON.parse((await request(port, "GET", "/api/v1/invoices")).body) as Array<{ number: number; status: string }>
    const numbers = invoices.map((i) => i.number)
    const gapFree = numbers.every((n, i) => n === i + 1)
    agent.destroy()

    console.log(`| burst of 10,000 on 5,000 seats | req/s | p99 ms | answers | commits per request |`)
    console.log(`|---|---|---|---|---|`)
    console.log(`| POST /reservations (1-10 seats) | ${fmt(holds.perSecond)} | ${fmt(holds.p99)} | ${JSON.stringify(holds.histogram)}, ${fmt(heldSeats)} seats held | ${fmt(holdWork.commits / 10_000, 3)} |`)
    console.log(`| POST /tickets | ${fmt(purchases.perSecond)} | ${fmt(purchases.p99)} | ${JSON.stringify(purchases.histogram)} | ${fmt(purchaseWork.commits / 10_000, 3)} |`)
    console.log()
    console.log(`checkouts: ${fmt(first.perSecond)}/s for 2,000 (${JSON.stringify(histogramOf(first.answers))}); ` +
      `after 1,000 cancelled, ${fmt(second.perSecond)}/s for 1,000 more (${JSON.stringify(histogramOf(second.answers))}); ` +
      `invoice numbers 1..${numbers.length} ${gapFree ? "gap-free" : "WITH GAPS"}, ` +
      `${invoices.filter((i) => i.status === "RECYCLED").length} in the pool`)
  } finally {
    await target.stop()
  }
}

const histogramOf = (answers: ReadonlyArray<{ readonly status: number }>) => {
  const histogram: Record<number, number> = {}
  for (const a of answers) histogram[a.status] = (histogram[a.status] ?? 0) + 1
  return histogram
}
