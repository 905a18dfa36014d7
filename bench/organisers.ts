/**
 * `npm run bench -- organisers [--rounds 3]`: what a purchase costs in an organiser's own
 * database beside one in the main database, in one service, side by side in one run. The
 * service starts with an `ADMIN_TOKEN` on an embedded PostgreSQL; it gets 20 concerts of the
 * default organiser, 20 of one organiser, and one concert each of 100 organisers (more than
 * `ORGANISER_DATABASES_OPEN`: their pools are opened and closed as buyers move between them).
 * A second service, with `ORGANISER_DATABASES_OPEN=100` and `ORGANISER_POOL_SIZE=1`, gets the
 * same 100 organisers' concerts; beside it, 100 concerts of the default organiser show what 100
 * concerts cost in one database. Then the same 20,000 purchases over 256 connections
 * (`bench/load.ts`, no key: buyers need none) go to each set of concerts in turn, `--rounds`
 * times.
 */
import * as crypto from "node:crypto"
import { createConcert, fmt, load, option, startTarget } from "./shared.js"

const post = async (port: number, pathname: string, body: unknown, token: string) => {
  const response = await fetch(`http://127.0.0.1:${port}${pathname}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` }
  })
  const text = await response.text()
  if (response.status !== 201) throw new Error(`POST ${pathname} answered ${response.status} ${text}`)
  return JSON.parse(text) as Record<string, string>
}

export const organisers = async (args: ReadonlyArray<string>) => {
  const rounds = Number(option(args, "rounds") ?? 3) || 3
  const adminToken = crypto.randomBytes(24).toString("base64url")
  process.env.ADMIN_TOKEN = adminToken
  delete process.env.DATABASE_URL
  const target = await startTarget([])
  process.env.ORGANISER_DATABASES_OPEN = "100"
  process.env.ORGANISER_POOL_SIZE = "1"
  const roomy = await startTarget([]).finally(() => {
    delete process.env.ORGANISER_DATABASES_OPEN
    delete process.env.ORGANISER_POOL_SIZE
  })
  try {
    const organiserConcerts = async (count: number, concertsEach: number, capacity: number, port = target.port) => {
      const ids: Array<string> = []
      for (let o = 0; o < count; o++) {
        const { api_key } = await post(port, "/api/v1/organisers", { name: `Bench organiser ${o}` }, adminToken)
        for (let c = 0; c < concertsEach; c++) {
          const concert = { name: `Bench ${o}/${c}`, venue: "Bench Arena", date: "2027-01-01", capacity, status: "ACTIVE" }
          ids.push((await post(port, "/api/v1/concerts", concert, api_key!)).id!)
        }
      }
      return ids
    }
    const sides = [
      { name: "default organiser (main database)", port: target.port, concerts: [] as Array<string> },
      { name: "one organiser (its own database)", port: target.port, concerts: await organiserConcerts(1, 20, 100_000) },
      { name: "100 organisers, 8 databases open at once", port: target.port, concerts: await organiserConcerts(100, 1, 100_000) },
      { name: "default organiser, 100 concerts", port: target.port, concerts: [] as Array<string> },
      {
        name: "100 organisers, 100 open (1 connection each)",
        port: roomy.port,
        concerts: await organiserConcerts(100, 1, 100_000, roomy.port)
      }
    ]
    for (let i = 0; i < 20; i++) sides[0]!.concerts.push(await createConcert(target.port, 100_000, `Bench default ${i}`))
    // As many concerts as the 100 organisers have, for what 100 concerts cost wherever they are.
    for (let i = 0; i < 100; i++) sides[3]!.concerts.push(await createConcert(target.port, 100_000, `Bench default 100/${i}`))
    const run = (side: (typeof sides)[number]) =>
      load({ port: side.port, concerts: side.concerts, requests: 20_000, connections: 256, burst: false })
    for (const side of sides) await run(side) // warm-up
    const totals = sides.map(() => 0)
    const rows: Array<string> = []
    for (let round = 1; round <= rounds; round++) {
      const results = []
      for (const [i, side] of sides.entries()) {
        const result = await run(side)
        console.log(`round ${round} ${side.name}: ${fmt(result.perSecond)} req/s, p99 ${fmt(result.p99)} ms, ${JSON.stringify(result.histogram)}`)
        totals[i]! += result.perSecond
        results.push(result)
      }
      rows.push(`| ${round} | ${results.map((r) => `${fmt(r.perSecond)} (${fmt(r.p99)})`).join(" | ")} |`)
    }
    console.log(`\n| round | ${sides.map((s) => `${s.name} req/s (p99 ms)`).join(" | ")} |`)
    console.log(`|---|${sides.map(() => "---").join("|")}|`)
    for (const row of rows) console.log(row)
    console.log(`| sum, against the default | ${totals.map((t) => fmt(t / totals[0]!, 2)).join(" | ")} |`)
  } finally {
    await roomy.stop()
    await target.stop()
  }
}
