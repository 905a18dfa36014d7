/**
 * The schema and the repositories on a real PostgreSQL: the constraints that make overselling
 * impossible whoever writes, and what each repository reads back.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Option, Stream } from "effect"
import * as crypto from "node:crypto"
import { ConcertId, UserId } from "../../src/domain/Ids.js"
import { ConcertsRepo } from "../../src/sql/ConcertsRepo.js"
import { SeatingPlansRepo } from "../../src/sql/SeatingPlansRepo.js"
import { TicketsRepo } from "../../src/sql/TicketsRepo.js"
import { TestDatabase } from "../fixtures/Database.js"

const Repos = Layer.mergeAll(ConcertsRepo.Default, TicketsRepo.Default, SeatingPlansRepo.Default).pipe(
  Layer.provideMerge(TestDatabase)
)

const create = (capacity: number, name = "Repo") =>
  Effect.flatMap(ConcertsRepo, (repo) => repo.create({ name, venue: "Hall", date: "2027-03-04", capacity, status: "ACTIVE" }))

const insertTicket = (concertId: string, capacity: number, seat: number, key: string | null = null) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO tickets (id, concert_id, capacity, seat_no, user_id, idempotency_key)
        VALUES (${crypto.randomUUID()}, ${concertId}, ${capacity}, ${seat}, 'u1', ${key})`)

/** The SQLSTATE a statement fails with, or "ok". */
const outcome = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(
    Effect.as("ok"),
    Effect.catchAll((error) => Effect.succeed(String((error as { cause?: { code?: unknown } }).cause?.code ?? error)))
  )

layer(Repos, { excludeTestServices: true, timeout: "60 seconds" })("schema and repositories", (it) => {
  it.effect("the schema refuses a seat beyond capacity, a seat sold twice, a forged capacity and a key used twice", () =>
    Effect.gen(function*() {
      const concert = yield* create(2)
      expect(yield* outcome(insertTicket(concert.id, 2, 1, "key-1"))).toBe("ok")
      expect(yield* outcome(insertTicket(concert.id, 2, 3))).toBe("23514") // CHECK: seat beyond capacity
      expect(yield* outcome(insertTicket(concert.id, 2, 1))).toBe("23505") // UNIQUE: the same seat
      expect(yield* outcome(insertTicket(concert.id, 3, 3))).toBe("23503") // FK: capacity must be the concert's
      expect(yield* outcome(insertTicket(concert.id, 2, 2, "key-1"))).toBe("23505") // UNIQUE: the key
      expect(yield* outcome(insertTicket(concert.id, 2, 2))).toBe("ok")
    }))

  it.effect("concerts: created, found, listed in creation order page by page", () =>
    Effect.gen(function*() {
      const repo = yield* ConcertsRepo
      const made = yield* Effect.forEach([1, 2, 3, 4, 5], (i) => create(10, `Listed ${i}`))
      expect(yield* repo.findById(made[0]!.id)).toEqual(Option.some(made[0]))
      expect(yield* repo.findById(ConcertId.make(crypto.randomUUID()))).toEqual(Option.none())
      const pages = Chunk.toReadonlyArray(yield* Stream.runCollect(yield* repo.list(2)))
      expect(pages.every((page) => page.length <= 2)).toBe(true)
      const listed = pages.flat().map((row) => row.id)
      expect(listed.slice(-5)).toEqual(made.map((c) => c.id))
    }))

  it.effect("tickets: a filtered list in (concert, seat) order, every ticket once across pages", () =>
    Effect.gen(function*() {
      const concert = yield* create(7)
      for (const seat of [3, 1, 2, 7, 5, 4, 6]) yield* insertTicket(concert.id, 7, seat)
      const repo = yield* TicketsRepo
      const pages = Chunk.toReadonlyArray(yield* Stream.runCollect(yield* repo.list({ concertId: concert.id }, 3)))
      expect(pages.map((page) => page.length)).toEqual([3, 3, 1])
      expect(pages.flat().map((t) => t.seat)).toEqual([1, 2, 3, 4, 5, 6, 7])
      const byUser = Chunk.toReadonlyArray(yield* Stream.runCollect(yield* repo.list({ userId: UserId.make("nobody") }, 3)))
      expect(byUser.flat()).toEqual([])
    }))

  it.effect("seating plans: missing plans first, smallest first, then the stale; a stored plan is current", () =>
    Effect.gen(function*() {
      const repo = yield* SeatingPlansRepo
      const big = yield* create(5000, "Big")
      const small = yield* create(50, "Small")
      const stale = yield* repo.stale(1000)
      const order = stale.map((p) => p.concertId)
      expect(order.indexOf(small.id)).toBeLessThan(order.indexOf(big.id))
      const plan = stale.find((p) => p.concertId === small.id)!
      yield* repo.store(plan, "\"1-0\"", new Uint8Array([1, 2, 3]))
      expect(yield* repo.etag(small.id)).toEqual(Option.some("\"1-0\""))
      expect((yield* repo.stale(1000)).map((p) => p.concertId)).not.toContain(small.id)
      // A sale makes it stale again, behind every concert still without a plan.
      yield* insertTicket(small.id, 50, 1)
      const again = (yield* repo.stale(1000)).map((p) => p.concertId)
      expect(again.indexOf(small.id)).toBeGreaterThan(again.indexOf(big.id))
    }))

  it.effect("seating plans: a concert's sold and held seats read back packed, every number whole", () =>
    Effect.gen(function*() {
      const repo = yield* SeatingPlansRepo
      const none = yield* repo.seats((yield* create(10, "Empty")).id)
      expect([none.sold, none.held].map((seats) => [seats instanceof Int32Array, seats.length])).toEqual([[true, 0], [true, 0]])
      const capacity = 150_000
      const concert = yield* create(capacity, "Packed")
      // Numbers across every byte of an int4: 1, 256, 65,536 and beyond.
      const sold = [1, 255, 256, 65_535, 65_536, 65_793, 149_999, 150_000]
      for (const seat of sold) yield* insertTicket(concert.id, capacity, seat)
      const sql = yield* SqlClient.SqlClient
      const reservation = crypto.randomUUID()
      yield* sql`INSERT INTO reservations (id, concert_id, user_id, quantity, seats, status, expires_at)
                 VALUES (${reservation}, ${concert.id}, 'u1', 2, ARRAY[70000, 2]::int[], 'HELD', now() + interval '1 hour')`
      yield* sql`INSERT INTO held_seats (concert_id, capacity, seat_no, reservation_id)
                 VALUES (${concert.id}, ${capacity}, 70000, ${reservation}), (${concert.id}, ${capacity}, 2, ${reservation})`
      const { held, sold: read } = yield* repo.seats(concert.id)
      expect([...read].sort((a, b) => a - b)).toEqual(sold)
      expect([...held].sort((a, b) => a - b)).toEqual([2, 70_000])
    }))
})
