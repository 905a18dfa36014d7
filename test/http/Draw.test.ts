import { expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import * as crypto from "node:crypto"
import { eventually } from "../fixtures/eventually.js"
import { json, raw, TestApp, TestAppWith } from "../fixtures/Http.js"

const user = (i: number) => `00000000-0000-0000-0000-${String(i + 1).padStart(12, "0")}`

interface Registration {
  readonly id: string
  readonly user_id: string
  readonly quantity: number
  readonly status: string
  readonly position: number | null
  readonly reservation_id: string | null
}

const createConcert = (capacity: number) =>
  Effect.map(
    raw("POST", "/api/v1/concerts", JSON.stringify({ name: "N", venue: "V", date: "2027-01-01", capacity, status: "ACTIVE" })),
    (response) => (json(response) as { id: string }).id
  )

const register = (concertId: string, i: number, quantity: number) =>
  raw("POST", `/api/v1/concerts/${concertId}/registrations`, JSON.stringify({ user_id: user(i), quantity }))

const registration = (concertId: string, id: string) =>
  Effect.map(raw("GET", `/api/v1/concerts/${concertId}/registrations/${id}`), (r) => json(r) as Registration)

/** The concert's registrations, as its organiser lists them. */
const listed = (concertId: string) =>
  Effect.map(raw("GET", `/api/v1/concerts/${concertId}/registrations`), (r) => json(r) as Array<Registration>)

const buy = (concertId: string, i: number) =>
  raw("POST", "/api/v1/tickets", JSON.stringify({ concert_id: concertId, user_id: user(i) }))

layer(TestApp, { excludeTestServices: true, timeout: "90 seconds" })("draw", (it) => {
  it.effect("a DRAW sale commits to its seed, draws at opens_at in the published order, serves its line, then sells first-come", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(6)
      // A draw needs an opening in the future.
      expect((yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ mode: "DRAW" }))).status).toBe(400)
      const past = new Date(Date.now() - 1000).toISOString()
      expect((yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ mode: "DRAW", opens_at: past }))).status).toBe(400)
      const opensAt = new Date(Date.now() + 3000).toISOString()
      const sale = json(yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ mode: "DRAW", opens_at: opensAt, hold_seconds: 2 }))) as {
        draw: { seed_sha256: string; drawn_at: string | null }
      }
      expect(sale.draw.seed_sha256).toMatch(/^[0-9a-f]{64}$/)
      expect(sale.draw.drawn_at).toBeNull()
      expect(json(yield* raw("GET", `/api/v1/concerts/${id}/draw`))).toEqual({
        seed_sha256: sale.draw.seed_sha256,
        seed: null,
        drawn_at: null,
        order: null
      })

      // Eight people register before the opening; one twice; nobody buys yet.
      const quantities = [2, 3, 1, 4, 2, 1, 3, 2]
      const registered: Array<Registration> = []
      for (const [i, quantity] of quantities.entries()) {
        const response = yield* register(id, i, quantity)
        expect(response.status).toBe(201)
        registered.push(json(response) as Registration)
      }
      expect(registered.every((r) => r.status === "REGISTERED" && r.position === null)).toBe(true)
      const twice = yield* register(id, 0, 1)
      expect(twice.status).toBe(409)
      expect((json(twice) as { error: string }).error).toContain(registered[0]!.id)
      expect((yield* register(id, 9, 11)).status).toBe(400)
      expect((yield* buy(id, 20)).status).toBe(409)
      // The organiser's list before the draw: everyone, in the order they came.
      expect(yield* listed(id)).toEqual(registered)

      // At opens_at the draw runs once, in the order anyone can recompute from the seed.
      const audit = yield* eventually(
        Effect.map(raw("GET", `/api/v1/concerts/${id}/draw`), (r) => json(r) as { seed: string | null; order: Array<string> | null; seed_sha256: string; drawn_at: string | null }),
        (a) => a.seed !== null,
        { within: "6 seconds" }
      )
      const seed = Buffer.from(audit.seed!, "hex")
      expect(crypto.createHash("sha256").update(seed).digest("hex")).toBe(audit.seed_sha256)
      const recomputed = registered
        .map((r) => ({ id: r.id, key: crypto.createHmac("sha256", seed).update(r.id, "utf8").digest("hex") }))
        .sort((a, b) => (a.key < b.key ? -1 : 1))
        .map((r) => r.id)
      expect(audit.order).toEqual(recomputed)
      expect(Date.parse(audit.drawn_at!)).toBeGreaterThanOrEqual(Date.parse(opensAt))

      // Offers walk that order: each whose quantity fits in the 6 seats; the rest wait in order.
      let free = 6
      const expectOffered = new Set<string>()
      for (const rid of recomputed) {
        const q = registered.find((r) => r.id === rid)!.quantity
        if (q <= free) {
          expectOffered.add(rid)
          free -= q
        }
      }
      const after = yield* Effect.forEach(registered, (r) => registration(id, r.id))
      expect(new Set(after.filter((r) => r.status === "OFFERED").map((r) => r.id))).toEqual(expectOffered)
      const waiting = recomputed.filter((rid) => !expectOffered.has(rid))
      for (const [i, rid] of waiting.entries()) expect(after.find((r) => r.id === rid)!.position).toBe(i + 1)
      const offered = after.filter((r) => r.status === "OFFERED")
      const held = yield* Effect.forEach(offered, (r) =>
        Effect.map(raw("GET", `/api/v1/reservations/${r.reservation_id}`), (res) => json(res) as { seats: Array<number>; status: string; expires_at: string }))
      expect(held.every((h) => h.status === "HELD")).toBe(true)
      expect(held.flatMap((h) => h.seats).length).toBeLessThanOrEqual(6)

      // While people wait, nobody buys outside the line.
      const outside = yield* buy(id, 30)
      expect(outside.status).toBe(409)
      expect((json(outside) as { error: string }).error).toContain("by draw")
      expect((yield* raw("POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: user(30), quantity: 1 }))).status).toBe(409)
      // The draw's timing is fixed now.
      expect((yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ opens_at: null }))).status).toBe(409)

      // One offer is paid; the others lapse (2 s holds) and their seats go down the line,
      // within a second, to each that fits; nobody is offered twice.
      yield* raw("POST", `/api/v1/reservations/${offered[0]!.reservation_id}/payment`)
      // Offers made from now on last: the line holds still while it is read.
      yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ hold_seconds: 600 }))
      const everOffered = new Set(offered.map((r) => r.id))
      yield* eventually(
        Effect.forEach(registered, (r) => registration(id, r.id)),
        (rs) =>
          rs.filter((r) => everOffered.has(r.id)).every((r) => r.status === "PURCHASED" || r.status === "EXPIRED") &&
          rs.some((r) => r.status === "OFFERED" && !everOffered.has(r.id)),
        { within: "5 seconds" }
      )
      // Read again once it has moved: each read above may have come from either side of the move.
      const settled = yield* Effect.forEach(registered, (r) => registration(id, r.id))
      // The organiser's list now: the line in drawn order, each as its registrant reads it.
      expect(yield* listed(id)).toEqual(recomputed.map((rid) => settled.find((r) => r.id === rid)))
      const newlyOffered = settled.filter((r) => r.status === "OFFERED" && !everOffered.has(r.id))
      expect(newlyOffered.length).toBeGreaterThan(0)
      // Offered within a second of the lapse (server times: a new offer's hold is 600 s).
      const lapsedAt = Math.max(...held.map((h) => Date.parse(h.expires_at)))
      for (const r of newlyOffered) {
        const offer = json(yield* raw("GET", `/api/v1/reservations/${r.reservation_id}`)) as { expires_at: string }
        expect(Date.parse(offer.expires_at) - 600_000 - lapsedAt).toBeLessThan(1000)
      }
      // Nobody was offered twice: one reservation per registrant, ever.
      const all = json(yield* raw("GET", `/api/v1/reservations?concert_id=${id}`)) as Array<{ user: { id: string } }>
      const perUser = new Map<string, number>()
      for (const r of all) perUser.set(r.user.id, (perUser.get(r.user.id) ?? 0) + 1)
      expect([...perUser.values()].every((n) => n === 1)).toBe(true)
      expect(settled.find((r) => r.id === offered[0]!.id)!.status).toBe("PURCHASED")
      for (const r of offered.slice(1)) expect(settled.find((s) => s.id === r.id)!.status).toBe("EXPIRED")
      // The first in line that fits got it: everyone before it in line did not fit.
      const stillWaiting = settled.filter((r) => r.status === "WAITING").sort((a, b) => a.position! - b.position!)
      stillWaiting.forEach((r, i) => expect(r.position).toBe(i + 1))

      // Withdraw everyone left; the line empties and the rest sells first-come.
      for (const r of settled.filter((r) => r.status === "OFFERED" || r.status === "WAITING")) {
        const withdrawn = yield* raw("DELETE", `/api/v1/concerts/${id}/registrations/${r.id}`)
        expect(withdrawn.status).toBe(200)
        expect((json(withdrawn) as Registration).status).toBe("WITHDRAWN")
      }
      expect((yield* buy(id, 40)).status).toBe(201)
      const deleteAgain = yield* raw("DELETE", `/api/v1/concerts/${id}/registrations/${offered[0]!.id}`)
      expect(deleteAgain.status).toBe(409)
    }))

  it.effect("a first-come concert's line opens at its sell-out; released seats go to it first", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(3)
      expect((yield* register(id, 0, 1)).status).toBe(409)
      const hold = json(yield* raw("POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: user(1), quantity: 3 }))) as { id: string }
      const bob = json(yield* register(id, 2, 2)) as Registration
      expect(bob).toMatchObject({ status: "WAITING", position: 1 })
      const carol = json(yield* register(id, 3, 3)) as Registration
      expect(carol).toMatchObject({ status: "WAITING", position: 2 })
      expect((yield* raw("GET", `/api/v1/concerts/${id}/draw`)).status).toBe(404)
      yield* raw("DELETE", `/api/v1/reservations/${hold.id}`)
      // Bob is offered 2 of the 3 seats at once; carol (3) does not fit and keeps her place.
      const offered = yield* registration(id, bob.id)
      expect(offered).toMatchObject({ status: "OFFERED" })
      expect(yield* registration(id, carol.id)).toMatchObject({ status: "WAITING", position: 1 })
      // A concert with a line cannot become a draw (its line would not be in the draw).
      const switched = yield* raw("PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({
        mode: "DRAW",
        opens_at: new Date(Date.now() + 60_000).toISOString()
      }))
      expect(switched.status).toBe(409)
      // Bob buys and carol withdraws: nobody is left in line. The last seat goes, and Dave joins:
      // places in the line are never given twice.
      yield* raw("POST", `/api/v1/reservations/${offered.reservation_id}/payment`)
      expect((yield* raw("DELETE", `/api/v1/concerts/${id}/registrations/${carol.id}`)).status).toBe(200)
      expect((yield* raw("POST", "/api/v1/reservations", JSON.stringify({ concert_id: id, user_id: user(5), quantity: 1 }))).status).toBe(201)
      const dave = yield* register(id, 4, 1)
      expect(dave.status).toBe(201)
      expect(json(dave)).toMatchObject({ status: "WAITING", position: 1 })
    }))

  it.effect("a concert its organiser closed and reopens gives its free seats to the line first", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(3)
      yield* raw("PUT", `/api/v1/concerts/${id}`, JSON.stringify({ status: "SOLD_OUT" }))
      const bob = json(yield* register(id, 2, 2)) as Registration
      expect(bob).toMatchObject({ status: "WAITING", position: 1 })
      const reopened = yield* raw("PUT", `/api/v1/concerts/${id}`, JSON.stringify({ status: "ACTIVE" }))
      expect(reopened.status).toBe(200)
      expect(yield* registration(id, bob.id)).toMatchObject({ status: "OFFERED" })
      // Bob's offer holds 2 of the 3 seats; the last one sells first-come.
      expect((yield* buy(id, 50)).status).toBe(201)
      expect((yield* buy(id, 51)).status).toBe(422)
    }))

  it.effect("registration bad input: 4xx with a JSON error", () =>
    Effect.gen(function*() {
      const id = yield* createConcert(3)
      const cases: Array<readonly [string, string, string | undefined, number]> = [
        ["POST", `/api/v1/concerts/${id}/registrations`, JSON.stringify({ user_id: user(0), quantity: 0 }), 400],
        ["POST", `/api/v1/concerts/${id}/registrations`, JSON.stringify({ user_id: user(0), quantity: "2" }), 400],
        ["POST", `/api/v1/concerts/${id}/registrations`, JSON.stringify({ user_id: "nobody", quantity: 1 }), 400],
        ["POST", `/api/v1/concerts/${id}/registrations`, JSON.stringify({ user_id: user(0) }), 400],
        ["POST", "/api/v1/concerts/999/registrations", JSON.stringify({ user_id: user(0), quantity: 1 }), 404],
        ["GET", `/api/v1/concerts/${id}/registrations/999`, undefined, 404],
        ["GET", `/api/v1/concerts/${id}/registrations/00000000-0000-4000-8000-000000000000`, undefined, 404],
        ["DELETE", `/api/v1/concerts/${id}/registrations/999`, undefined, 404],
        ["GET", "/api/v1/concerts/999/draw", undefined, 404],
        ["PUT", `/api/v1/concerts/${id}/sale`, JSON.stringify({ mode: "DRAW", opens_at: "tomorrow" }), 400]
      ]
      const failures: Array<string> = []
      for (const [method, path, body, expected] of cases) {
        const response = yield* raw(method, path, body)
        const error = response.headers["content-type"] === "application/json" ? (json(response) as { error?: unknown }).error : undefined
        if (response.status !== expected || typeof error !== "string") failures.push(`${method} ${path} ${body ?? ""} -> ${response.status} ${response.body}`)
      }
      expect(failures).toEqual([])
    }))
})

// Pages of two rows: the organiser's list read across pages, before and after a line forms.
layer(TestAppWith({ TICKETS_PAGE_SIZE: "2" }), { excludeTestServices: true, timeout: "60 seconds" })("registrations listed", (it) => {
  it.effect("a concert's registrations read across pages: in the order they came, then the line with its positions", () =>
    Effect.gen(function*() {
      const drawn = yield* createConcert(10)
      yield* raw("PUT", `/api/v1/concerts/${drawn}/sale`, JSON.stringify({ mode: "DRAW", opens_at: new Date(Date.now() + 600_000).toISOString() }))
      const early = yield* Effect.forEach([0, 1, 2, 3, 4], (i) => Effect.map(register(drawn, i, 1), (r) => json(r) as Registration))
      yield* raw("DELETE", `/api/v1/concerts/${drawn}/registrations/${early[2]!.id}`)
      const before = yield* listed(drawn)
      expect(before.map((r) => [r.id, r.status])).toEqual(early.map((r, i) => [r.id, i === 2 ? "WITHDRAWN" : "REGISTERED"]))

      // A first-come concert sold out: five join its line.
      const full = yield* createConcert(1)
      expect((yield* buy(full, 9)).status).toBe(201)
      const line = yield* Effect.forEach([10, 11, 12, 13, 14], (i) => Effect.map(register(full, i, 1), (r) => json(r) as Registration))
      yield* raw("DELETE", `/api/v1/concerts/${full}/registrations/${line[1]!.id}`)
      const read = yield* listed(full)
      expect(read).toEqual(yield* Effect.forEach(line, (r) => registration(full, r.id)))
      expect(read.map((r) => r.position)).toEqual([1, null, 2, 3, 4])
    }))
})
