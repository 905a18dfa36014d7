/**
 * `npm run bench -- draw`: 100,000 registrations for a DRAW concert of 5,000 seats (256
 * connections), then the draw: the time from `opens_at` until the draw's outcome is durable and
 * readable (the seed is revealed in the draw's own transaction, with every offer and place in
 * line), and the commits it took. The service gets a users file of 100,000 users.
 */
import * as fs from "node:fs/promises"
import * as http from "node:http"
import * as os from "node:os"
import * as path from "node:path"
import { createConcert, databaseWork, fmt, request, startTarget } from "./shared.js"

const registrants = 100_000
const user = (i: number) => `10000000-0000-4000-8000-${String(i + 1).padStart(12, "0")}`

const send = (agent: http.Agent, port: number, pathname: string, body: string) =>
  new Promise<{ status: number; ms: number }>((resolve, reject) => {
    const started = performance.now()
    const req = http.request(
      { host: "127.0.0.1", port, method: "POST", path: pathname, agent, headers: { "content-type": "application/json" } },
      (res) => {
        res.resume()
        res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }))
      }
    )
    req.on("error", reject)
    req.end(body)
  })

export const draw = async (args: ReadonlyArray<string>) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "ticketoverflow-draw-"))
  const usersFile = path.join(dir, "users.json")
  await fs.writeFile(usersFile, JSON.stringify(Array.from({ length: registrants }, (_, i) => ({
    id: user(i),
    name: `Registrant ${i + 1}`,
    email: `registrant${i + 1}@example.org`
  }))))
  await fs.chmod(dir, 0o755)
  process.env.USERS_FILE = usersFile
  const target = await startTarget(args)
  try {
    const { db, port } = target
    if (db === undefined) throw new Error("the draw benchmark reads the database")
    const concert = await createConcert(port, 5000, "Draw")
    // Far enough ahead for every registration; moved to just ahead once they are in.
    const later = new Date(Date.now() + 3_600_000).toISOString()
    await request(port, "PUT", `/api/v1/concerts/${concert}/sale`, JSON.stringify({ mode: "DRAW", opens_at: later }))
    const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
    const latencies: Array<number> = []
    const statuses: Record<number, number> = {}
    const started = performance.now()
    // 256 connections kept busy: each lane sends its next registration when the last is answered.
    let next = 0
    await Promise.all(Array.from({ length: 256 }, async () => {
      while (next < registrants) {
        const i = next++
        const quantity = (i * 7919 % 4) + 1
        const answer = await send(agent, port, `/api/v1/concerts/${concert}/registrations`, JSON.stringify({ user_id: user(i), quantity }))
        latencies.push(answer.ms)
        statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
      }
    }))
    const wall = performance.now() - started
    latencies.sort((a, b) => a - b)
    agent.destroy()
    // A DRAW sale's opens_at can be moved while it has not run; the draw comes 3 s from now.
    const opensAt = Date.now() + 3000
    const moved = await request(port, "PUT", `/api/v1/concerts/${concert}/sale`, JSON.stringify({ opens_at: new Date(opensAt).toISOString() }))
    if (moved.status !== 200) throw new Error(`moving opens_at answered ${moved.status} ${moved.body}`)
    const work = await databaseWork(db)
    let readable = 0
    /** How long the answer that first showed the outcome took (it reads and encodes the whole line). */
    let lastAnswer = 0
    for (;;) {
      const asked = Date.now()
      const audit = JSON.parse((await request(port, "GET", `/api/v1/concerts/${concert}/draw`)).body) as { seed: string | null; drawn_at: string | null }
      if (audit.seed !== null) {
        readable = Date.now()
        lastAnswer = readable - asked
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    const drawWork = await work()
    const [offers] = (await db.query<{ offered: string; waiting: string; seats: string }>(
      `SELECT count(*) FILTER (WHERE g.status = 'OFFERED')::text AS offered, count(*) FILTER (WHERE g.status IN ('WAITING', 'REGISTERED'))::text AS waiting,
              (SELECT count(*) FROM held_seats WHERE concert_id = $1)::text AS seats
       FROM registrations g WHERE g.concert_id = $1`,
      [concert]
    )).rows
    console.log(`| registrations | per second | p50 ms | p99 ms | answers |`)
    console.log(`|---|---|---|---|---|`)
    console.log(`| ${fmt(registrants)} over 256 connections | ${fmt(registrants / (wall / 1000))} | ${fmt(latencies[Math.floor(latencies.length * 0.5)]!)} | ${fmt(latencies[Math.floor(latencies.length * 0.99)]!)} | ${JSON.stringify(statuses)} |`)
    console.log()
    console.log(`draw: opens_at → outcome durable and readable ${fmt(readable - opensAt)} ms (polled every 20 ms; ` +
      `the answer that showed it took ${fmt(lastAnswer)} ms); ` +
      `${offers!.offered} offers holding ${offers!.seats} seats, ${offers!.waiting} waiting; ` +
      `${fmt(drawWork.commits)} commits in the whole database from the move of opens_at to 1.5 s after the draw was readable ` +
      `(background work included), ${fmt(drawWork.walBytes / 1e6, 1)} MB of WAL`)
  } finally {
    await target.stop()
    await fs.rm(dir, { recursive: true, force: true })
  }
}
