import { expect, layer } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import * as zlib from "node:zlib"
import { json, raw, type RawResponse, TestApp, TestAppWith } from "../fixtures/Http.js"
import { eventually } from "../fixtures/eventually.js"

const bob = "00000000-0000-0000-0000-000000002357"

/** GET the plan until its desc reads as expected (plans are rendered in the background). */
const planShowing = (concertId: string, desc: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const showing = (plan: RawResponse) => plan.status === 200 && plan.body.includes(`<desc>${desc}</desc>`)
    const last = yield* eventually(raw("GET", `/api/v1/concerts/${concertId}/seats`, undefined, headers), showing, {
      within: "10 seconds"
    })
    if (!showing(last)) throw new Error(`no plan showing ${desc}; last answer ${last.status} ${last.body.slice(0, 200)}`)
    return last
  })

layer(TestApp, { excludeTestServices: true, timeout: "60 seconds" })("seating plans", (it) => {
  it.effect("a new concert gets its plan; it follows purchases and renames", () =>
    Effect.gen(function*() {
      const created = yield* raw("POST", "/api/v1/concerts", JSON.stringify({ name: "Plan Test", venue: "Hall", date: "2027-01-01", capacity: 40, status: "ACTIVE" }))
      const concertId = (json(created) as { id: string }).id
      const first = yield* raw("GET", `/api/v1/concerts/${concertId}/seats`)
      expect([200, 503]).toContain(first.status)
      if (first.status === 503) expect(first.headers["retry-after"]).toBeDefined()

      const empty = yield* planShowing(concertId, `${concertId}|40|0`)
      expect(empty.headers["content-type"]).toBe("image/svg+xml")
      expect(empty.body).toContain("Plan Test")

      for (let i = 0; i < 7; i++) {
        yield* raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: bob }))
      }
      const sold = yield* planShowing(concertId, `${concertId}|40|7`)
      expect((sold.body.match(/class="p"/g) ?? []).length).toBe(7)

      yield* raw("PUT", `/api/v1/concerts/${concertId}`, JSON.stringify({ name: "Renamed Plan" }))
      const renamed = yield* eventually(planShowing(concertId, `${concertId}|40|7`), (plan) => plan.body.includes("Renamed Plan"), {
        within: "10 seconds"
      })
      expect(renamed.body).toContain("Renamed Plan")
    }))

  it.effect("plans carry an ETag (304 when unchanged) and are served gzipped to clients that accept it", () =>
    Effect.gen(function*() {
      const created = yield* raw("POST", "/api/v1/concerts", JSON.stringify({ name: "Etag", venue: "Hall", date: "2027-01-01", capacity: 3000, status: "ACTIVE" }))
      const concertId = (json(created) as { id: string }).id
      const plain = yield* planShowing(concertId, `${concertId}|3000|0`)
      const etag = plain.headers.etag
      expect(etag).toMatch(/^"[^"]+"$/)
      const unchanged = yield* raw("GET", `/api/v1/concerts/${concertId}/seats`, undefined, { "if-none-match": etag! })
      expect(unchanged.status).toBe(304)
      expect(unchanged.body).toBe("")

      const gz = yield* raw("GET", `/api/v1/concerts/${concertId}/seats`, undefined, { "accept-encoding": "gzip" })
      expect(gz.headers["content-encoding"]).toBe("gzip")
      expect(gz.headers["content-type"]).toBe("image/svg+xml")
      // Another representation, another tag; either says the client holds this plan.
      expect(gz.headers.etag).toBe(`${etag!.slice(0, -1)}-gzip"`)
      expect(zlib.gunzipSync(gz.bytes).toString()).toBe(plain.body)
      expect(gz.bytes.length).toBeLessThan(plain.bytes.length / 5)
      for (const held of [gz.headers.etag!, `W/${etag}`, `"other", ${etag}`]) {
        const again = yield* raw("GET", `/api/v1/concerts/${concertId}/seats`, undefined, { "if-none-match": held, "accept-encoding": "gzip" })
        expect([held, again.status]).toEqual([held, 304])
      }
      // gzip refused by its weight, or not named: the plain plan.
      for (const refused of ["gzip;q=0", "identity", "br", "gzip; q=0.0, identity"]) {
        const answer = yield* raw("GET", `/api/v1/concerts/${concertId}/seats`, undefined, { "accept-encoding": refused })
        expect([refused, answer.headers["content-encoding"], answer.body === plain.body]).toEqual([refused, undefined, true])
      }
      const starred = yield* raw("GET", `/api/v1/concerts/${concertId}/seats`, undefined, { "accept-encoding": "*" })
      expect(starred.headers["content-encoding"]).toBe("gzip")
    }))
})

const adminToken = "an-admin-token-for-the-seating-tests"

// Redraws take every sweep here (no rest), and one render thread takes 8 plans a sweep.
layer(TestAppWith({ ADMIN_TOKEN: adminToken, SEATING_REDRAW_SHARE: "1", RENDER_WORKERS: "1" }), {
  excludeTestServices: true,
  timeout: "90 seconds"
})("seating plans across organisers", (it) => {
  it.effect("one organiser's many selling concerts do not keep another organiser's new concert from its plan", () =>
    Effect.gen(function*() {
      const busy: Array<string> = []
      for (let i = 0; i < 12; i++) {
        const created = yield* raw("POST", "/api/v1/concerts", JSON.stringify({ name: `Busy ${i}`, venue: "Hall", date: "2027-01-01", capacity: 5000, status: "ACTIVE" }))
        busy.push((json(created) as { id: string }).id)
      }
      for (const id of busy) yield* planShowing(id, `${id}|5000|0`)
      // From now on all twelve are behind at every sweep: more than a sweep's batch.
      // Stopped by a flag and waited for: an interrupted fiber would leave its request running.
      let sell = true
      const selling = yield* Effect.fork(Effect.whileLoop({
        while: () => sell,
        body: () =>
          Effect.zipRight(
            Effect.forEach(busy, (id) => raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: id, user_id: bob })), { discard: true }),
            Effect.sleep("100 millis")
          ),
        step: () => undefined
      }))
      // However this ends, the seller stops and is waited for.
      yield* Effect.gen(function*() {
        yield* Effect.sleep("2500 millis")
        const other = json(yield* raw("POST", "/api/v1/organisers", JSON.stringify({ name: "Other" }), { authorization: `Bearer ${adminToken}` })) as {
          api_key: string
        }
        const created = yield* raw(
          "POST",
          "/api/v1/concerts",
          JSON.stringify({ name: "Other's", venue: "Hall", date: "2027-01-01", capacity: 40, status: "ACTIVE" }),
          { authorization: `Bearer ${other.api_key}` }
        )
        const id = (json(created) as { id: string }).id
        const asked = Date.now()
        yield* planShowing(id, `${id}|40|0`)
        expect(Date.now() - asked).toBeLessThan(5000)
      }).pipe(Effect.ensuring(Effect.suspend(() => {
        sell = false
        return Fiber.await(selling)
      })))
    }))
})
