import { expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import { freshDatabaseUrl } from "../fixtures/Database.js"
import { eventually } from "../fixtures/eventually.js"
import { rawRequest } from "../fixtures/RawHttp.js"
import { postConcert, serviceResource } from "../fixtures/Service.js"

const user = (i: number) => `00000000-0000-0000-0000-${String(i + 1).padStart(12, "0")}`

interface Audit {
  readonly seed_sha256: string
  readonly seed: string | null
  readonly drawn_at: string | null
  readonly order: ReadonlyArray<string> | null
}

it.scopedLive("a draw whose opens_at passes while the service is down runs when it starts, once", () =>
  Effect.gen(function*() {
    const url = yield* freshDatabaseUrl
    const first = yield* serviceResource({ DATABASE_URL: url })
    const concertId = yield* Effect.promise(() => postConcert(first.port, 4, "Draw"))
    const call = (port: number, method: string, path: string, body?: unknown) =>
      Effect.promise(() => rawRequest(port, method, path, body === undefined ? undefined : JSON.stringify(body)))
    const opensAt = new Date(Date.now() + 3000).toISOString()
    yield* call(first.port, "PUT", `/api/v1/concerts/${concertId}/sale`, { mode: "DRAW", opens_at: opensAt })
    const ids: Array<string> = []
    for (let i = 0; i < 6; i++) {
      const r = yield* call(first.port, "POST", `/api/v1/concerts/${concertId}/registrations`, { user_id: user(i), quantity: 1 })
      ids.push((JSON.parse(r.body) as { id: string }).id)
    }
    const committed = (JSON.parse((yield* call(first.port, "GET", `/api/v1/concerts/${concertId}/draw`)).body) as Audit).seed_sha256
    // Killed before the opening; it passes while nothing runs.
    first.process.kill("SIGKILL")
    yield* Effect.promise(() => first.exited)
    yield* Effect.sleep("3500 millis")

    const second = yield* serviceResource({ DATABASE_URL: url })
    const audit = yield* eventually(
      Effect.map(call(second.port, "GET", `/api/v1/concerts/${concertId}/draw`), (r) => JSON.parse(r.body) as Audit),
      (a) => a.seed !== null,
      { within: "3 seconds" }
    )
    const seed = Buffer.from(audit.seed!, "hex")
    expect(crypto.createHash("sha256").update(seed).digest("hex")).toBe(committed)
    expect([...audit.order!].sort()).toEqual([...ids].sort())
    const statuses = yield* Effect.forEach(ids, (id) =>
      Effect.map(call(second.port, "GET", `/api/v1/concerts/${concertId}/registrations/${id}`), (r) => JSON.parse(r.body) as { status: string }))
    expect(statuses.filter((s) => s.status === "OFFERED")).toHaveLength(4)
    expect(statuses.filter((s) => s.status === "WAITING")).toHaveLength(2)

    // A third start does not draw again: same seed, same time, same offers.
    second.process.kill("SIGKILL")
    yield* Effect.promise(() => second.exited)
    const third = yield* serviceResource({ DATABASE_URL: url })
    yield* Effect.sleep("1 second")
    const again = JSON.parse((yield* call(third.port, "GET", `/api/v1/concerts/${concertId}/draw`)).body) as Audit
    expect(again).toEqual(audit)
    const reservations = JSON.parse((yield* call(third.port, "GET", `/api/v1/reservations?concert_id=${concertId}`)).body) as Array<unknown>
    expect(reservations).toHaveLength(4)
  }), 120_000)
