import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import pg from "pg"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"
import { eventually } from "../fixtures/eventually.js"

const user = "00000000-0000-0000-0000-000000000042"

it.scopedLive("PENDING prints survive kill -9 and are all printed after restart; the plan is served at once", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const settings = { DATABASE_URL: url, RENDER_WORKERS: "1" }
    const first = yield* serviceResource(settings)
    const call = (port: number, method: string, path: string, body?: string) =>
      Effect.promise(() => rawRequest(port, method, path, body))
    const concertId = yield* Effect.promise(() => postConcert(first.port, 200, "Print restart"))
    const tickets = yield* Effect.forEach(Array.from({ length: 60 }), () =>
      call(first.port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user })).pipe(
        Effect.map((r) => (JSON.parse(r.body) as { id: string }).id)
      ))
    yield* eventually(
      call(first.port, "GET", `/api/v1/concerts/${concertId}/seats`),
      (plan) => plan.body.includes(`|200|60<`),
      { within: "10 seconds", every: "100 millis" }
    )
    yield* Effect.forEach(tickets, (id) => call(first.port, "POST", `/api/v1/tickets/${id}/print`), { concurrency: 20 })
    first.process.kill("SIGKILL")
    yield* Effect.promise(() => first.exited)
    // What a crash with a full queue leaves behind, whatever had finished before the kill.
    yield* Effect.promise(async () => {
      const db = new pg.Client({ connectionString: url })
      await db.connect()
      await db.query("UPDATE tickets SET print_status = 'PENDING' WHERE concert_id = $1", [concertId])
      await db.query("DELETE FROM ticket_prints")
      await db.end()
    })

    const second = yield* serviceResource(settings)
    const plan = yield* call(second.port, "GET", `/api/v1/concerts/${concertId}/seats`)
    expect(plan.status).toBe(200)
    expect(plan.body).toContain(`<desc>${concertId}|200|60</desc>`)

    const statuses = () =>
      call(second.port, "GET", `/api/v1/tickets?concert_id=${concertId}`).pipe(
        Effect.map((r) => (JSON.parse(r.body) as Array<{ print_status: string }>).map((t) => t.print_status))
      )
    const now = yield* eventually(statuses(), (all) => all.every((s) => s === "PRINTED"), {
      within: "60 seconds",
      every: "200 millis"
    })
    expect(now).toEqual(Array(60).fill("PRINTED"))
    const svg = yield* call(second.port, "GET", `/api/v1/tickets/${tickets[59]}/print`)
    expect(svg.status).toBe(200)
    expect(svg.body).toContain(`<desc>${tickets[59]}</desc>`)
  }), 180_000)
