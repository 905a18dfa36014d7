import { Entity, ShardingConfig } from "@effect/cluster"
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { Effect, Either, Exit, FastCheck as fc, FiberId, Layer, Ref } from "effect"
import * as crypto from "node:crypto"
import { ConcertEntityLayer, ConcertEntityLive } from "../../src/actors/ConcertEntity.js"
import { HoldTimers } from "../../src/actors/HoldTimers.js"
import { LocalConcerts } from "../../src/actors/LocalConcerts.js"
import { Ownership } from "../../src/actors/Ownership.js"
import { ConcertJournal } from "../../src/sql/ConcertJournal.js"
import { ConcertSales } from "../../src/actors/ConcertSales.js"
import { ConcertEntity, JournalUnavailable, type Order, type PurchaseOutcome } from "../../src/domain/ConcertEntity.js"
import { SoldOut } from "../../src/domain/Errors.js"
import { ConcertId, TicketId, UserId } from "../../src/domain/Ids.js"
import { ReservationId, ReservationRecord } from "../../src/domain/Reservation.js"
import { TicketRecord } from "../../src/domain/Ticket.js"
import { ConcertsRepo } from "../../src/sql/ConcertsRepo.js"
import { TicketsRepo } from "../../src/sql/TicketsRepo.js"
import { TestCluster } from "../fixtures/Cluster.js"
import { TestDatabase } from "../fixtures/Database.js"

const user = UserId.make("00000000-0000-0000-0000-000000000001")

const createConcert = (capacity: number) =>
  Effect.flatMap(ConcertsRepo, (repo) =>
    repo.create({ name: "Test", venue: "Hall", date: "2027-03-04", capacity, status: "ACTIVE" }))

const journaled = (concertId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ id: string; seat_no: number }>`SELECT id, seat_no FROM tickets WHERE concert_id = ${concertId}`)

layer(TestCluster, { excludeTestServices: true, timeout: "60 seconds" })("ConcertEntity", (it) => {
  it.effect("sells exactly its capacity to concurrent buyers and reads SOLD_OUT", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert(10)
      const sales = yield* ConcertSales
      const results = yield* Effect.forEach(
        Array.from({ length: 25 }, () => TicketId.make(crypto.randomUUID())),
        (ticketId) => Effect.either(sales.buy(concert.id, { ticketId, userId: user })),
        { concurrency: "unbounded" }
      )
      const sold = results.filter(Either.isRight)
      expect(sold).toHaveLength(10)
      expect(new Set(sold.map((r) => r.right.seat))).toEqual(new Set(Array.from({ length: 10 }, (_, i) => i + 1)))
      expect(results.filter(Either.isLeft).map((r) => r.left._tag)).toEqual(Array(15).fill("SoldOut"))
      expect((yield* journaled(concert.id)).length).toBe(10)
      const after = yield* Effect.flatMap(ConcertsRepo, (repo) => repo.findById(concert.id))
      expect(after._tag === "Some" && after.value.status).toBe("SOLD_OUT")
    }))

  it.effect("answers an unknown concert, a cancelled one, and a redelivered message", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const missing = yield* Effect.flip(
        sales.buy(crypto.randomUUID(), { ticketId: TicketId.make(crypto.randomUUID()), userId: user })
      )
      expect(missing._tag).toBe("ConcertNotFound")

      const concert = yield* createConcert(5)
      const ticketId = TicketId.make(crypto.randomUUID())
      const first = yield* sales.buy(concert.id, { ticketId, userId: user })
      const again = yield* sales.buy(concert.id, { ticketId, userId: user })
      expect(again).toEqual(first)
      expect((yield* journaled(concert.id)).length).toBe(1)

      const updated = yield* (yield* ConcertEntity.client)(concert.id).Update({ status: "CANCELLED", name: "Renamed" })
      expect(updated.status).toBe("CANCELLED")
      expect(updated.name).toBe("Renamed")
      const refused = yield* Effect.flip(sales.buy(concert.id, { ticketId: TicketId.make(crypto.randomUUID()), userId: user }))
      expect(refused._tag).toBe("ConcertCancelled")
    }))

  it.effect("answers each order of one message in order: tickets, a repeat, a reused key, sold out", () =>
    Effect.gen(function*() {
      const concert = yield* createConcert(2)
      const order = (key?: string, userId = user) => ({
        ticketId: TicketId.make(crypto.randomUUID()),
        userId,
        ...(key === undefined ? {} : { idempotencyKey: key })
      })
      const keyed = order("k-1")
      const outcomes = yield* (yield* ConcertEntity.client)(concert.id).Purchases({
        orders: [keyed, { ...keyed, ticketId: TicketId.make(crypto.randomUUID()) }, order("k-1", UserId.make("00000000-0000-0000-0000-000000000002")), order(), order()]
      })
      expect(outcomes.map((o) => "_tag" in o ? o._tag : "Ticket")).toEqual([
        "Ticket",
        "Ticket",
        "IdempotencyKeyReused",
        "Ticket",
        "SoldOut"
      ])
      // The retried order (same key, same body) gets the first order's ticket, not a seat.
      expect(outcomes[1]).toEqual(outcomes[0])
      expect((yield* journaled(concert.id)).length).toBe(2)
    }))

  it.effect.prop(
    "random interleavings of purchases and keyed retries never oversell and never buy twice",
    [
      fc.array(
        fc.record({
          capacity: fc.integer({ min: 1, max: 30 }),
          buyers: fc.integer({ min: 0, max: 60 }),
          retries: fc.array(fc.nat(), { maxLength: 20 })
        }),
        { minLength: 1, maxLength: 4 }
      ),
      fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 300, maxLength: 300 })
    ],
    ([concerts, order]) =>
      Effect.gen(function*() {
        const sales = yield* ConcertSales
        const attempts: Array<{ concert: ConcertId; key: string; buyer: number }> = []
        const plans = yield* Effect.forEach(concerts, (spec) =>
          Effect.map(createConcert(spec.capacity), (concert) => {
            const keys = Array.from({ length: spec.buyers }, () => crypto.randomUUID())
            keys.forEach((key, buyer) => attempts.push({ concert: concert.id, key, buyer }))
            // A retry repeats some buyer's request with the same idempotency key.
            if (keys.length > 0) {
              for (const r of spec.retries) attempts.push({ concert: concert.id, key: keys[r % keys.length]!, buyer: r % keys.length })
            }
            return { concert, spec }
          }))
        const shuffled = attempts
          .map((attempt, i) => ({ attempt, rank: order[i % order.length]! + i * 1e-9 }))
          .sort((a, b) => a.rank - b.rank)
          .map(({ attempt }) => attempt)

        const results = yield* Effect.forEach(
          shuffled,
          (a) =>
            sales.buy(a.concert, {
              ticketId: TicketId.make(crypto.randomUUID()),
              userId: user,
              idempotencyKey: a.key
            }).pipe(Effect.either, Effect.map((result) => ({ ...a, result }))),
          { concurrency: "unbounded" }
        )

        for (const { concert, spec } of plans) {
          const mine = results.filter((r) => r.concert === concert.id)
          const wins = mine.flatMap((r) => Either.isRight(r.result) ? [r.result.right] : [])
          const byKey = new Map<string, Set<string>>()
          for (const r of mine) {
            if (Either.isRight(r.result)) byKey.set(r.key, (byKey.get(r.key) ?? new Set()).add(r.result.right.id))
            else expect(r.result.left._tag).toBe("SoldOut")
          }
          // A retried purchase never yields a second ticket.
          for (const ids of byKey.values()) expect(ids.size).toBe(1)
          const distinct = new Set(wins.map((w) => w.id))
          expect(distinct.size).toBe(Math.min(spec.capacity, spec.buyers))
          const rows = yield* journaled(concert.id)
          // The database agrees with every success, and each seat is sold once within capacity.
          expect(new Set(rows.map((r) => r.id))).toEqual(distinct)
          expect(new Set(rows.map((r) => r.seat_no)).size).toBe(rows.length)
          expect(rows.every((r) => r.seat_no >= 1 && r.seat_no <= spec.capacity)).toBe(true)
        }
      }),
    { fastCheck: { numRuns: 12 } }
  )
})

/** The real journal, with some of its operations replaced. */
const journalWith = (change: (journal: ConcertJournal) => Partial<ConcertJournal>) =>
  Layer.effect(
    ConcertJournal,
    Effect.map(ConcertJournal, (journal) => new ConcertJournal({ ...journal, ...change(journal) }))
  ).pipe(Layer.provide(ConcertJournal.Default))

/** The handlers on their own, through `Entity.makeTestClient`: no sharding, a real journal. */
const order = (extra: { readonly deadline?: number; readonly idempotencyKey?: string } = {}) => ({
  ticketId: TicketId.make(crypto.randomUUID()),
  userId: user,
  ...extra
})

const Deps = Layer.mergeAll(ConcertsRepo.Default, TicketsRepo.Default, ShardingConfig.layer()).pipe(
  Layer.provideMerge(TestDatabase)
)

layer(Deps, { excludeTestServices: true, timeout: "60 seconds" })("ConcertEntity handlers", (it) => {
  it.scoped("a batch: tickets in order, a keyed repeat answered as its first, then sold out; late orders unwritten", () =>
    Effect.gen(function*() {
      const concert = yield* Effect.flatMap(ConcertsRepo, (repo) =>
        repo.create({ name: "Handlers", venue: "Hall", date: "2027-03-04", capacity: 2, status: "ACTIVE" }))
      const makeClient = yield* Entity.makeTestClient(ConcertEntity, ConcertEntityLive)
      const entity = yield* makeClient(concert.id)

      const late = order({ deadline: Date.now() - 1 })
      const keyed = order({ idempotencyKey: "same-key" })
      const repeat = { ...order({ idempotencyKey: "same-key" }) }
      const outcomes = yield* entity.Purchases({ orders: [late, keyed, repeat, order(), order()] })
      expect(outcomes[0]).toEqual(new JournalUnavailable({ reason: "the purchase could not be saved in time" }))
      expect(outcomes[1]).toBeInstanceOf(TicketRecord)
      expect(outcomes[2]).toEqual(outcomes[1])
      expect(outcomes[3]).toBeInstanceOf(TicketRecord)
      expect(outcomes[4]).toEqual(SoldOut.of())
      expect((outcomes as ReadonlyArray<TicketRecord>).slice(1, 4).map((t) => t.seat)).toEqual([1, 1, 2])

      // The late order was never written; the others were.
      const tickets = yield* Effect.flatMap(TicketsRepo, (repo) => repo.findById(late.ticketId))
      expect(tickets._tag).toBe("None")
      const sold = yield* Effect.flatMap(TicketsRepo, (repo) => repo.findById(keyed.ticketId))
      expect(sold._tag).toBe("Some")
    }))

  it.scoped("a journal write that outlasts the buyers' deadline is cut off there: 503 for each, the write cancelled", () =>
    Effect.gen(function*() {
      const concert = yield* Effect.flatMap(ConcertsRepo, (repo) =>
        repo.create({ name: "Stalled", venue: "Hall", date: "2027-03-04", capacity: 5, status: "ACTIVE" }))
      // The real journal, except that appending hangs until it is interrupted (a stalled database).
      const cancelled = yield* Ref.make(0)
      const Stalled = journalWith(() => ({
        append: () => Effect.onInterrupt(Effect.never, () => Ref.update(cancelled, (n) => n + 1))
      }))
      const entities = ConcertEntityLayer.pipe(
        Layer.provide([Stalled, HoldTimers.Default, Ownership.Default, LocalConcerts.Default])
      )
      const makeClient = yield* Entity.makeTestClient(ConcertEntity, entities)
      const entity = yield* makeClient(concert.id)

      const started = Date.now()
      const outcomes = yield* entity.Purchases({
        orders: [order({ deadline: started + 400 }), order({ deadline: started + 5_000 }), order()]
      })
      const took = Date.now() - started
      expect(outcomes).toEqual(Array(3).fill(new JournalUnavailable({ reason: "the purchase could not be saved in time" })))
      expect(took).toBeGreaterThanOrEqual(350)
      expect(took).toBeLessThan(4_000)
      expect(yield* Ref.get(cancelled)).toBe(1)
    }))

  /** Hands `orders` to the concert's entity through its door, as a sender of this process does. */
  const throughDoor = (locals: LocalConcerts, concertId: string, orders: ReadonlyArray<Order>) =>
    Effect.async<ReadonlyArray<PurchaseOutcome>, unknown>((resume) => {
      const door = locals.door(concertId)
      if (door === undefined) return resume(Effect.dieMessage("the entity has no door"))
      const handed = door({ _tag: "LocalOrders", orders, span: undefined, done: (exit) => resume(exit) })
      if (!handed) resume(Effect.dieMessage("the door refused the orders"))
    })

  /**
   * The entity on the journal (`change` replacing some of its operations), counting the batches
   * it writes without a fiber (the express lane's), with the door reachable from the test.
   */
  const withDoor = (change: (journal: ConcertJournal) => Partial<ConcertJournal> = () => ({})) =>
    Effect.gen(function*() {
      const lane = { batches: 0 }
      const Counting = journalWith((journal) => {
        const changed = { ...journal, ...change(journal) }
        return {
          ...changed,
          unsafeAppend: (organiser, ledger, rows, done) => {
            lane.batches++
            return changed.unsafeAppend(organiser, ledger, rows, done)
          }
        }
      })
      const locals = yield* Effect.provide(LocalConcerts, LocalConcerts.Default)
      const makeClient = yield* Entity.makeTestClient(
        ConcertEntity,
        ConcertEntityLayer.pipe(Layer.provide([Counting, HoldTimers.Default, Ownership.Default, Layer.succeed(LocalConcerts, locals)]))
      )
      return { lane, locals, makeClient }
    })

  it.scoped("orders through the door of an idle entity are cut off at their deadline too: 503 for each, the write given up", () =>
    Effect.gen(function*() {
      const concert = yield* Effect.flatMap(ConcertsRepo, (repo) =>
        repo.create({ name: "Stalled door", venue: "Hall", date: "2027-03-04", capacity: 5, status: "ACTIVE" }))
      // The real journal, except that a batch written without a fiber waits until it is given up.
      const givenUp = yield* Ref.make(0)
      const { lane, locals, makeClient } = yield* withDoor(() => ({
        unsafeAppend: (_organiser, _ledger, _rows, done) => () => {
          Effect.runSync(Ref.update(givenUp, (n) => n + 1))
          done(Exit.interrupt(FiberId.none))
        }
      }))
      const entity = yield* makeClient(concert.id)
      // Through the cluster first: the entity starts and holds the concert's state.
      const first = yield* entity.Purchases({ orders: [order()] })
      expect((first[0] as TicketRecord).seat).toBe(1)

      const started = Date.now()
      const outcomes = yield* throughDoor(locals, concert.id, [order({ deadline: started + 400 }), order({ deadline: started + 5_000 })])
      const took = Date.now() - started
      expect(outcomes).toEqual(Array(2).fill(new JournalUnavailable({ reason: "the purchase could not be saved in time" })))
      expect(took).toBeGreaterThanOrEqual(350)
      expect(took).toBeLessThan(4_000)
      expect(yield* Ref.get(givenUp)).toBe(1)
      expect(lane.batches).toBe(1)

      // The entity believes the journal again, not what it planned: the next seat is 2.
      const next = yield* entity.Purchases({ orders: [order()] })
      expect((next[0] as TicketRecord).seat).toBe(2)
      expect((yield* journaled(concert.id)).map((row) => row.seat_no).sort()).toEqual([1, 2])
    }))

  it.scoped("a sender whose callback throws does not stop the entity nor its database's writer", () =>
    Effect.gen(function*() {
      const concert = yield* Effect.flatMap(ConcertsRepo, (repo) =>
        repo.create({ name: "Throwing door", venue: "Hall", date: "2027-03-04", capacity: 5, status: "ACTIVE" }))
      const { lane, locals, makeClient } = yield* withDoor()
      const entity = yield* makeClient(concert.id)
      yield* entity.Purchases({ orders: [order()] })
      // Told once, and throws; twice over (the database's writer has two statements in flight).
      const throwing = Effect.async<number>((resume) => {
        let count = 0
        locals.door(concert.id)!({
          _tag: "LocalOrders",
          orders: [order({ deadline: Date.now() + 10_000 })],
          span: undefined,
          done: () => {
            count++
            setTimeout(() => resume(Effect.succeed(count)), 200)
            throw new Error("the sender's own bug")
          }
        })
      })
      expect([yield* throwing, yield* throwing]).toEqual([1, 1])
      expect(lane.batches).toBe(2)
      // Both ways in still sell, each the next seat.
      const through = yield* throughDoor(locals, concert.id, [order({ deadline: Date.now() + 10_000 })])
      const viaCluster = yield* entity.Purchases({ orders: [order()] })
      expect([(through[0] as TicketRecord).seat, (viaCluster[0] as TicketRecord).seat]).toEqual([4, 5])
    }))

  it.scoped("an order through the door whose ticket is already journaled gets that ticket back, not a second seat", () =>
    Effect.gen(function*() {
      const concert = yield* Effect.flatMap(ConcertsRepo, (repo) =>
        repo.create({ name: "Repeat door", venue: "Hall", date: "2027-03-04", capacity: 5, status: "ACTIVE" }))
      const { lane, locals, makeClient } = yield* withDoor()
      const entity = yield* makeClient(concert.id)
      const sent = order({ deadline: Date.now() + 10_000 })
      const first = (yield* entity.Purchases({ orders: [sent] }))[0] as TicketRecord
      // The same order again (a sender that lost the answer), with a new one beside it.
      const other = order({ deadline: Date.now() + 10_000 })
      const again = yield* throughDoor(locals, concert.id, [sent, other])
      // Tried in the express lane, refused by the journal, then decided by the loop.
      expect(lane.batches).toBe(1)
      expect(again[0]).toEqual(first)
      expect((again[1] as TicketRecord).seat).toBe(2)
      const rows = yield* journaled(concert.id)
      expect(rows.map((row) => [row.id, row.seat_no]).sort()).toEqual([[first.id, 1], [other.ticketId, 2]].sort())
    }))

  it.scoped("keyed purchases and holds through the door are decided by the loop, not the express lane", () =>
    Effect.gen(function*() {
      const concert = yield* Effect.flatMap(ConcertsRepo, (repo) =>
        repo.create({ name: "Not express", venue: "Hall", date: "2027-03-04", capacity: 5, status: "ACTIVE" }))
      const { lane, locals, makeClient } = yield* withDoor()
      const entity = yield* makeClient(concert.id)
      yield* entity.Purchases({ orders: [order()] })
      const deadline = Date.now() + 10_000
      const keyed = yield* throughDoor(locals, concert.id, [order({ deadline, idempotencyKey: "door-key" }), order({ deadline })])
      const held = yield* throughDoor(locals, concert.id, [
        { _tag: "Hold", reservationId: ReservationId.make(crypto.randomUUID()), userId: user, quantity: 2, deadline }
      ])
      expect(lane.batches).toBe(0)
      expect(keyed.map((t) => (t as TicketRecord).seat)).toEqual([2, 3])
      expect((held[0] as ReservationRecord).seats).toEqual([4, 5])
      // A plain purchase, with nothing else under way: the lane's (refused, sold out).
      const after = yield* throughDoor(locals, concert.id, [order({ deadline })])
      expect(after).toEqual([SoldOut.of((held[0] as ReservationRecord).expiresAt!)])
    }))
})
