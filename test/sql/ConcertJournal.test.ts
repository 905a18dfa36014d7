/**
 * Group commit across concerts: the batches of a database's concerts that arrive while a write
 * is in flight go in one statement, and each is still its own: one refused by a constraint does
 * not fail the others, one given up is not written while the others are.
 */
import { SqlClient } from "@effect/sql"
import { expect, layer } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Exit, Fiber, Layer, Metric, Option, Redacted, Scope } from "effect"
import * as crypto from "node:crypto"
import Pg from "pg"
import { ConcertId } from "../../src/domain/Ids.js"
import { defaultOrganiser } from "../../src/domain/Organiser.js"
import * as Metrics from "../../src/Metrics.js"
import { ConcertsRepo } from "../../src/sql/ConcertsRepo.js"
import { ConcertJournal, type HoldRow, type JournalRow } from "../../src/sql/ConcertJournal.js"
import { MainDatabase } from "../../src/sql/Organisers.js"
import { TestDatabase } from "../fixtures/Database.js"
import { eventually } from "../fixtures/eventually.js"

const Deps = Layer.mergeAll(ConcertJournal.Default, ConcertsRepo.Default).pipe(Layer.provideMerge(TestDatabase))

/** A concert of 10 seats and its ledger as the journal loads it. */
const concert = Effect.gen(function*() {
  const created = yield* Effect.flatMap(ConcertsRepo, (repo) =>
    repo.create({ name: "Together", venue: "Hall", date: "2027-05-06", capacity: 10, status: "ACTIVE" }))
  return Option.getOrThrow(yield* Effect.flatMap(ConcertJournal, (journal) => journal.load(ConcertId.make(created.id))))
})

const row = (seat: number): JournalRow => ({ id: crypto.randomUUID(), seat, userId: "u1", idempotencyKey: undefined })

/** Holds the tickets table against inserts, from a connection of its own, until released. */
const lockTickets = Effect.gen(function*() {
  const main = yield* MainDatabase
  const client = new Pg.Client({ connectionString: Redacted.value(main.url) })
  yield* Effect.promise(() => client.connect())
  yield* Effect.promise(() => client.query("BEGIN; LOCK TABLE tickets IN EXCLUSIVE MODE"))
  return Effect.promise(() => client.query("COMMIT").then(() => client.end()))
})

/** Appends waiting for the lock (seen in the database), so that the next ones queue behind. */
const waitingForLock = (count: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const seen = yield* eventually(
      Effect.map(
        sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
                           WHERE wait_event_type = 'Lock' AND query LIKE '%INSERT INTO tickets%'`,
        (rows) => rows[0]!.n
      ),
      (n) => n === count,
      { within: "10 seconds" }
    )
    expect(seen).toBe(count)
  })

const soldSeats = (concertId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ seat_no: number }>`SELECT seat_no FROM tickets WHERE concert_id = ${concertId} ORDER BY seat_no`).pipe(
      Effect.map((rows) => rows.map((r) => r.seat_no))
    )

const hold = (...seats: Array<number>): HoldRow => ({
  id: crypto.randomUUID(),
  userId: "u2",
  seats,
  expiresAt: Date.now() + 600_000,
  idempotencyKey: undefined
})

const heldSeats = (concertId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ seat_no: number }>`SELECT seat_no FROM held_seats WHERE concert_id = ${concertId} ORDER BY seat_no`).pipe(
      Effect.map((rows) => rows.map((r) => r.seat_no))
    )

const writes = Effect.map(Metric.value(Metrics.writeConcerts), (state) => ({ count: state.count, sum: state.sum }))

layer(Deps, { excludeTestServices: true, timeout: "60 seconds" })("ConcertJournal, several concerts at once", (it) => {
  it.effect("batches that arrive while a write is in flight go together in the next statement", () =>
    Effect.gen(function*() {
      const journal = yield* ConcertJournal
      const [a, b, c] = yield* Effect.all([concert, concert, concert])
      const release = yield* lockTickets
      const before = yield* writes
      const first = yield* Effect.fork(journal.append(a!, [row(1)]))
      yield* waitingForLock(1)
      const rest = yield* Effect.fork(Effect.all([journal.append(b!, [row(1), row(2)]), journal.append(c!, [row(1)])], { concurrency: 2 }))
      yield* release
      yield* Fiber.join(first)
      yield* Fiber.join(rest)
      const after = yield* writes
      // Two statements: one for a, one for b and c together.
      expect([after.count - before.count, after.sum - before.sum]).toEqual([2, 3])
      expect(yield* soldSeats(a!.concert.id)).toEqual([1])
      expect(yield* soldSeats(b!.concert.id)).toEqual([1, 2])
      expect(yield* soldSeats(c!.concert.id)).toEqual([1])
    }))

  it.effect("a batch refused by a constraint fails alone: the others of its statement are written", () =>
    Effect.gen(function*() {
      const journal = yield* ConcertJournal
      const [a, b, c] = yield* Effect.all([concert, concert, concert])
      // Seat 1 of b was sold behind its entity's back.
      yield* journal.append(b!, [row(1)])
      const release = yield* lockTickets
      const first = yield* Effect.fork(journal.append(a!, [row(1)]))
      yield* waitingForLock(1)
      const together = yield* Effect.fork(
        Effect.all([journal.append(b!, [row(1)]), journal.append(c!, [row(1), row(2)])].map(Effect.exit), { concurrency: 2 })
      )
      yield* release
      yield* Fiber.join(first)
      const [conflicting, fine] = yield* Fiber.join(together)
      expect(Exit.isFailure(conflicting!) && JSON.stringify(conflicting.cause)).toContain("Conflict")
      expect(Exit.isSuccess(fine!)).toBe(true)
      expect(yield* soldSeats(b!.concert.id)).toEqual([1])
      expect(yield* soldSeats(c!.concert.id)).toEqual([1, 2])
    }))

  it.effect("a batch given up is not written, before or after its statement was sent; the others are", () =>
    Effect.gen(function*() {
      const journal = yield* ConcertJournal
      const [x, a, b] = yield* Effect.all([concert, concert, concert])
      const release = yield* lockTickets
      // x is sent and waits for the lock; a and b, arriving together, go in a second statement
      // (two may be in flight), which waits too.
      const sentAlone = yield* Effect.fork(journal.append(x!, [row(1)]))
      yield* waitingForLock(1)
      const givenUp = yield* Effect.fork(journal.append(a!, [row(1)]))
      const kept = yield* Effect.fork(journal.append(b!, [row(1), row(2)]))
      yield* waitingForLock(2)
      // x given up once sent: its statement is cancelled.
      yield* Fiber.interrupt(sentAlone)
      yield* waitingForLock(1)
      // a given up once sent with b: their statement is cancelled, and b is sent again alone.
      yield* Fiber.interrupt(givenUp)
      yield* waitingForLock(1)
      yield* release
      yield* Fiber.join(kept)
      expect(yield* soldSeats(x!.concert.id)).toEqual([])
      expect(yield* soldSeats(a!.concert.id)).toEqual([])
      expect(yield* soldSeats(b!.concert.id)).toEqual([1, 2])
    }))

  it.effect("without a fiber: a batch given up is told so once, and not written, whether or not it was sent", () =>
    Effect.gen(function*() {
      const journal = yield* ConcertJournal
      const [x, a, b] = yield* Effect.all([concert, concert, concert])
      const told = new Map<string, Array<Exit.Exit<void, unknown>>>()
      const tell = (name: string) => (exit: Exit.Exit<void, unknown>) => void told.set(name, [...(told.get(name) ?? []), exit])
      const release = yield* lockTickets
      // x is sent and waits for the lock; a goes in a second statement, which waits too; b,
      // arriving after, waits its turn unsent.
      const giveUpX = journal.unsafeAppend(defaultOrganiser, x!, [row(1)], tell("x"))
      yield* waitingForLock(1)
      journal.unsafeAppend(defaultOrganiser, a!, [row(1)], tell("a"))
      yield* waitingForLock(2)
      const giveUpB = journal.unsafeAppend(defaultOrganiser, b!, [row(1)], tell("b"))
      // b given up before it was sent: told at once.
      giveUpB()
      expect(told.get("b")?.map(Exit.isInterrupted)).toEqual([true])
      // x given up once sent: told once its statement is cancelled, not before.
      giveUpX()
      giveUpX()
      yield* waitingForLock(1)
      yield* eventually(Effect.sync(() => told.get("x")?.length ?? 0), (n) => n > 0, { within: "10 seconds" })
      expect(told.get("x")?.map(Exit.isInterrupted)).toEqual([true])
      yield* release
      yield* eventually(Effect.sync(() => told.get("a")?.length ?? 0), (n) => n > 0, { within: "10 seconds" })
      expect(told.get("a")?.map(Exit.isSuccess)).toEqual([true])
      expect(told.get("b")).toHaveLength(1)
      expect(yield* soldSeats(x!.concert.id)).toEqual([])
      expect(yield* soldSeats(a!.concert.id)).toEqual([1])
      expect(yield* soldSeats(b!.concert.id)).toEqual([])
    }))

  it.effect("a journal that has closed refuses a batch at once: told unavailable, not left waiting", () =>
    Effect.gen(function*() {
      const c = yield* concert
      const scope = yield* Scope.make()
      const closed = yield* Layer.buildWithScope(Layer.fresh(ConcertJournal.Default), scope).pipe(
        Effect.map(Context.get(ConcertJournal))
      )
      yield* Scope.close(scope, Exit.void)
      const told: Array<Exit.Exit<void, unknown>> = []
      closed.unsafeAppend(defaultOrganiser, c, [row(1)], (exit) => void told.push(exit))
      expect(told).toHaveLength(1)
      expect(JSON.stringify(told[0])).toContain("the journal is closing")
      const refused = yield* Effect.exit(closed.append(c, [row(1)]))
      expect(JSON.stringify(refused)).toContain("the journal is closing")
      expect(yield* soldSeats(c.concert.id)).toEqual([])
    }))

  it.effect("without a fiber: a batch whose callback throws does not stop the writer", () =>
    Effect.gen(function*() {
      const journal = yield* ConcertJournal
      const concerts = yield* Effect.all([concert, concert, concert, concert])
      // One more than the statements in flight, each told in a statement of its own.
      for (const c of concerts.slice(0, 3)) {
        const told = yield* Effect.async<boolean>((resume) => {
          journal.unsafeAppend(defaultOrganiser, c, [row(1)], (exit) => {
            resume(Effect.succeed(Exit.isSuccess(exit)))
            throw new Error("the caller's own bug")
          })
        })
        expect(told).toBe(true)
      }
      yield* journal.append(concerts[3]!, [row(1)])
      for (const c of concerts) expect(yield* soldSeats(c.concert.id)).toEqual([1])
    }))
})

layer(Deps, { excludeTestServices: true, timeout: "60 seconds" })("ConcertJournal, the database's own checks", (it) => {
  it.effect("a seat is held or sold, never both: a statement that would make it so is refused whole", () =>
    Effect.gen(function*() {
      const journal = yield* ConcertJournal
      const c = yield* concert
      yield* journal.append(c, [row(1)], [hold(2)])
      // Sold, then held; held, then sold; sold and held in one statement (with a free seat
      // beside, not written either).
      const refused = yield* Effect.all([
        journal.append(c, [], [hold(1)]),
        journal.append(c, [row(2)], []),
        journal.append(c, [row(3), row(4)], [hold(4)])
      ].map(Effect.exit))
      for (const exit of refused) expect(Exit.isFailure(exit) && JSON.stringify(exit.cause)).toContain("Conflict")
      expect(yield* soldSeats(c.concert.id)).toEqual([1])
      expect(yield* heldSeats(c.concert.id)).toEqual([2])
    }))
})

/** The journal on a pool of one connection, whose prepared statements can be read. */
const OneConnection = Deps.pipe(
  Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map([["DATABASE_POOL_SIZE", "1"]]))))
)

layer(OneConnection, { excludeTestServices: true, timeout: "60 seconds" })("ConcertJournal, its statement", (it) => {
  it.effect("the append is parsed once per connection and run by name: a named prepared statement", () =>
    Effect.gen(function*() {
      const journal = yield* ConcertJournal
      const sql = yield* SqlClient.SqlClient
      const [a, b] = yield* Effect.all([concert, concert])
      yield* journal.append(a!, [row(1)])
      yield* journal.append(b!, [row(1), row(2)], [hold(3)])
      const prepared = yield* sql<{ statement: string; runs: number }>`
        SELECT statement, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements`
      // One statement, parsed once and run for both appends.
      expect(prepared.filter((p) => p.statement.includes("INSERT INTO tickets")).map((p) => p.runs)).toEqual([2])
      expect(yield* soldSeats(b!.concert.id)).toEqual([1, 2])
      expect(yield* heldSeats(b!.concert.id)).toEqual([3])
    }))
})
