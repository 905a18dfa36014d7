/**
 * `npm run bench -- hostile [--settle SECONDS] [--requests N] [--only seats,lists]`: buyers alone, then beside each
 * attack one client could make (`bench/attacker.ts`, at the sizes quoted in the attack list),
 * in one run against one service. For each: buyers' purchases per second and p99 against
 * buyers alone measured just before it (targets: ≥ 0.5× and ≤ 2×), the service's RSS before,
 * at its peak, right after and `--settle` seconds after, while a few buyers keep buying
 * (target: back under 1.2× of before), and for the concert flood the time until a new small
 * concert's first seating plan is served (target: 2 s).
 */
import { type ChildProcess, spawn } from "node:child_process"
import * as os from "node:os"
import { createConcert, fmt, load, type LoadResult, option, request, root, startTarget } from "./shared.js"

type Kind = "pipeline" | "lists" | "seats" | "unknown" | "idle" | "concerts"

const attacks: ReadonlyArray<readonly [Kind, string]> = [
  ["pipeline", "2,000 pipelined GET /concerts (15,000 concerts) per connection, closed unread, every second"],
  ["lists", "4 clients looping over GET /tickets (51,000 tickets)"],
  ["seats", "64 clients looping over an uncompressed 150,000-seat plan, 300 more never reading"],
  ["unknown", "purchases for random unknown concert ids, 64 at a time"],
  ["idle", "19,000 idle connections"],
  ["concerts", "2,500 POST /concerts of 150,000 seats"]
]

const attacker = (kind: Kind, port: number, concertId: string): ChildProcess =>
  spawn(process.execPath, ["--import", "tsx", "bench/attacker.ts", JSON.stringify({ kind, port, concertId })], {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"]
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const hostile = async (args: ReadonlyArray<string>) => {
  const settleSeconds = Number(option(args, "settle") ?? 60)
  const requests = Number(option(args, "requests") ?? 6000)
  const only = option(args, "only")?.split(",")
  const target = await startTarget(args)
  try {
    const { db, port } = target
    if (db === undefined) throw new Error("the hostile benchmark prepares data in the database: do not use --url")

    // The attackers' material: 15,000 concerts, 51,000 tickets, a 150,000-seat plan.
    await db.query(`INSERT INTO concerts (id, name, venue, date, capacity, status)
                    SELECT gen_random_uuid(), 'Tour stop ' || g, 'Venue ' || g, '2027-01-01', 10, 'ACTIVE'
                    FROM generate_series(1, 15000) g`)
    // Their plans are current, so the sweep has nothing to do for them.
    await db.query(`INSERT INTO seating_plans (concert_id, concert_version, purchased, etag, svg_gzip)
                    SELECT id, version, 0, '"1-0"', '\\x1f8b'::bytea FROM concerts`)
    const listed = await createConcert(port, 60_000, "Listed")
    await db.query(`INSERT INTO tickets (id, concert_id, capacity, seat_no, user_id)
                    SELECT gen_random_uuid(), $1, 60000, g, '00000000-0000-0000-0000-000000000001'
                    FROM generate_series(1, 51000) g`, [listed])
    const stadium = await createConcert(port, 150_000, "Stadium")
    for (let i = 0; (await request(port, "GET", `/api/v1/concerts/${stadium}/seats`)).status !== 200; i++) {
      if (i > 600) throw new Error("the stadium's plan never came")
      await sleep(100)
    }

    const buyers = await Promise.all(Array.from({ length: 20 }, (_, i) => createConcert(port, 20_000, `Buyers ${i}`)))
    const buy = () => load({ port, concerts: buyers, requests, connections: 64, burst: false })
    await buy() // warm-up
    await sleep(3000)

    const rows: Array<string> = []
    const row = (label: string, r: LoadResult, alone: LoadResult, rss: string, extra = "") =>
      rows.push(
        `| ${label} | ${fmt(r.perSecond)} | ${fmt(r.perSecond / alone.perSecond, 2)} | ${fmt(r.p99, 1)} | ` +
          `${fmt(r.p99 / alone.p99, 2)} | ${rss} | ${Object.entries(r.histogram).map(([s, n]) => `${n}×${s === "0" ? "error" : s}`).join(", ")}${extra} |`
      )
    /** Buyers keep buying a little while memory settles: a service is not idle after an attack. */
    const settle = async () => {
      const until = Date.now() + settleSeconds * 1000
      while (Date.now() < until) {
        await load({ port, concerts: buyers, requests: 200, connections: 4, burst: false })
        await sleep(2000)
      }
    }

    for (const [kind, label] of attacks.filter(([kind]) => only === undefined || only.includes(kind))) {
      // Each attack against buyers alone measured just before it: the machine drifts.
      const alone = await buy()
      row("(alone, just before)", alone, alone, `${fmt(await target.rssMb())}`)
      const before = await target.rssMb()
      let peak = before
      const sampler = setInterval(async () => {
        peak = Math.max(peak, await target.rssMb())
      }, 250)
      const child = attacker(kind, port, stadium)
      const exited = new Promise((resolve) => child.once("exit", resolve))
      await sleep(kind === "idle" ? 15_000 : 2000) // the attack under way
      let firstPlan = ""
      const measured = kind === "concerts"
        ? await (async () => {
          const small = await createConcert(port, 100, "Small, during the flood")
          const started = performance.now()
          const buying = buy()
          while ((await request(port, "GET", `/api/v1/concerts/${small}/seats`)).status !== 200) await sleep(50)
          firstPlan = `; a new 100-seat concert's first plan after ${fmt(performance.now() - started)} ms`
          return buying
        })()
        : await buy()
      child.kill("SIGTERM")
      await exited
      const after = await target.rssMb()
      await settle()
      clearInterval(sampler)
      const settled = await target.rssMb()
      row(
        label,
        measured,
        alone,
        `${fmt(before)} → peak ${fmt(peak)} → ${fmt(after)} → ${fmt(settled)} ${settleSeconds} s later (${fmt(settled / before, 2)}×)`,
        firstPlan
      )
    }

    process.stdout.write([
      `hostile benchmark, ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? "cpu"}, node ${process.version}`,
      `buyers: ${fmt(requests)} purchases over 20 concerts, 64 connections, per run`,
      "",
      "| beside | purchases/s | × alone | p99 ms | × alone | service RSS MB: before → peak → after → settled | statuses |",
      "|---|---|---|---|---|---|---|",
      ...rows,
      ""
    ].join("\n"))
  } finally {
    await target.stop()
  }
}
