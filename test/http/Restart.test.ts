import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"

const user = (i: number) => `00000000-0000-0000-0000-${String(i + 1).padStart(12, "0")}`

it.scopedLive("a purchase acknowledged with 201 survives kill -9; after restart the concert sells exactly to capacity", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const first = yield* serviceResource({ DATABASE_URL: url })
    const concertId = yield* Effect.promise(() => postConcert(first.port, 40, "Restart"))
    const buy = (port: number, i: number) =>
      rawRequest(port, "POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(i) }))

    const before = yield* Effect.promise(() => Promise.all(Array.from({ length: 25 }, (_, i) => buy(first.port, i))))
    expect(before.map((r) => r.status)).toEqual(Array(25).fill(201))
    // Killed right after its last 201: no shutdown, no flush.
    first.process.kill("SIGKILL")
    yield* Effect.promise(() => first.exited)

    const second = yield* serviceResource({ DATABASE_URL: url })
    const listed = yield* Effect.promise(() => rawRequest(second.port, "GET", `/api/v1/tickets?concert_id=${concertId}`))
    const ids = (JSON.parse(listed.body) as Array<{ id: string }>).map((t) => t.id).sort()
    expect(ids).toEqual(before.map((r) => (JSON.parse(r.body) as { id: string }).id).sort())

    const after = yield* Effect.promise(() => Promise.all(Array.from({ length: 30 }, (_, i) => buy(second.port, 25 + i))))
    const statuses = after.map((r) => r.status)
    expect(statuses.filter((s) => s === 201)).toHaveLength(15)
    expect(statuses.filter((s) => s === 422)).toHaveLength(15)
    const final = yield* Effect.promise(() => rawRequest(second.port, "GET", `/api/v1/concerts/${concertId}`))
    expect(JSON.parse(final.body)).toMatchObject({ status: "SOLD_OUT", capacity: 40 })
  }), 120_000)

it.scopedLive("SIGTERM stops the service cleanly and promptly", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const service = yield* serviceResource({ DATABASE_URL: url })
    const started = Date.now()
    service.process.kill("SIGTERM")
    const code = yield* Effect.promise(() => service.exited)
    expect(Date.now() - started).toBeLessThan(20_000)
    // Interrupted by its signal, the runtime exits the conventional way for SIGTERM (143).
    expect([0, 143]).toContain(code)
    expect(service.output()).not.toMatch(/level=(ERROR|FATAL)/)
  }), 120_000)
