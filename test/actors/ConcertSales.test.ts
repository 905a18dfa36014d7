import { expect, layer } from "@effect/vitest"
import * as SqlClient from "@effect/sql/SqlClient"
import { ConfigProvider, Effect, Either, Exit, FiberId, Layer } from "effect"
import * as crypto from "node:crypto"
import { ClusterLive } from "../../src/actors/Cluster.js"
import { ConcertEntityLive } from "../../src/actors/ConcertEntity.js"
import { ConcertSales } from "../../src/actors/ConcertSales.js"
import { LocalConcerts } from "../../src/actors/LocalConcerts.js"
import { ConcertEntity } from "../../src/domain/ConcertEntity.js"
import { TicketId, UserId } from "../../src/domain/Ids.js"
import { ConcertsRepo } from "../../src/sql/ConcertsRepo.js"
import { TestDatabase } from "../fixtures/Database.js"

const user = UserId.make("00000000-0000-0000-0000-000000000001")
const order = () => ({ ticketId: TicketId.make(crypto.randomUUID()), userId: user })

/** Concert entities whose mailbox holds a single message. */
const TinyMailboxes = Layer.mergeAll(ConcertEntityLive, ConcertSales.Default, ConcertsRepo.Default, LocalConcerts.Default).pipe(
  Layer.provideMerge(ClusterLive),
  Layer.provideMerge(TestDatabase),
  Layer.provide(Layer.setConfigProvider(
    ConfigProvider.fromMap(new Map([["CONCERT_MAILBOX_CAPACITY", "1"]])).pipe(
      ConfigProvider.orElse(() => ConfigProvider.fromEnv())
    )
  ))
)

const createConcert = (capacity: number) =>
  Effect.flatMap(ConcertsRepo, (repo) =>
    repo.create({ name: "Test", venue: "Hall", date: "2027-03-04", capacity, status: "ACTIVE" }))

layer(TinyMailboxes, { excludeTestServices: true, timeout: "60 seconds" })("ConcertSales", (it) => {
  it.effect("one message per buyer overflows a one-message mailbox; ConcertSales never does", () =>
    Effect.gen(function*() {
      // The control: 300 concurrent single-order messages. Some must be refused as MailboxFull,
      // or the second half of this test proves nothing.
      const direct = (yield* ConcertEntity.client)((yield* createConcert(1000)).id)
      const sent = yield* Effect.forEach(
        Array.from({ length: 300 }, order),
        (o) => Effect.either(direct.Purchases({ orders: [o] })),
        { concurrency: "unbounded" }
      )
      expect(sent.filter((r) => Either.isLeft(r) && r.left._tag === "MailboxFull").length).toBeGreaterThan(0)

      // The same crowd through ConcertSales waits in this process instead: one message in flight.
      const concert = yield* createConcert(200)
      const sales = yield* ConcertSales
      const bought = yield* Effect.forEach(
        Array.from({ length: 300 }, order),
        (o) => Effect.either(sales.buy(concert.id, o)),
        { concurrency: "unbounded" }
      )
      expect(bought.filter(Either.isRight)).toHaveLength(200)
      expect(bought.flatMap((r) => Either.isLeft(r) ? [r.left._tag] : [])).toEqual(Array(100).fill("SoldOut"))
    }))

  it.effect("a failed message fails every order it carried, and the next buyers are sent afresh", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const unknown = crypto.randomUUID()
      const refused = yield* Effect.forEach(
        Array.from({ length: 50 }, order),
        (o) => Effect.flip(sales.buy(unknown, o)),
        { concurrency: "unbounded" }
      )
      expect(refused.map((e) => e._tag)).toEqual(Array(50).fill("ConcertNotFound"))
      const concert = yield* createConcert(1)
      expect((yield* sales.buy(concert.id, order())).seat).toBe(1)
    }))
})

layer(TinyMailboxes, { excludeTestServices: true, timeout: "60 seconds" })("ConcertSales in the concert's own process", (it) => {
  const ticketsOf = (concertId: string) =>
    Effect.flatMap(SqlClient.SqlClient, (sql) =>
      sql<{ readonly id: string }>`SELECT id FROM tickets WHERE concert_id = ${concertId}`.pipe(
        Effect.map((rows) => rows.map((row) => row.id)),
        Effect.orDie
      ))

  it.effect("once the concert runs here, its orders go through its door, not the cluster", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const locals = yield* LocalConcerts
      const concert = yield* createConcert(100)
      // The first order goes through the cluster, which starts the entity here.
      expect(locals.door(concert.id)).toBeUndefined()
      yield* sales.buy(concert.id, order())
      const door = locals.door(concert.id)!
      expect(door).toBeDefined()
      let handed = 0
      locals.open(concert.id, (orders) => {
        handed += orders.orders.length
        return door(orders)
      })
      const bought = yield* Effect.forEach(Array.from({ length: 40 }, order), (o) => sales.buy(concert.id, o), {
        concurrency: "unbounded"
      })
      expect(handed).toBe(40)
      expect(new Set(bought.map((t) => t.seat)).size).toBe(40)
      expect((yield* ticketsOf(concert.id)).length).toBe(41)
    }))

  it.effect("orders whose answer is lost at the door are sent again through the cluster and bought once", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const locals = yield* LocalConcerts
      const concert = yield* createConcert(100)
      yield* sales.buy(concert.id, order())
      const door = locals.door(concert.id)!
      // The entity writes the orders, and stops before answering: the sender cannot tell.
      let lost = 0
      locals.open(concert.id, (orders) =>
        door({
          ...orders,
          done: (exit) => {
            lost += orders.orders.length
            orders.done(Exit.isSuccess(exit) ? Exit.interrupt(FiberId.none) : exit)
          }
        }))
      // Only an order with a deadline is sent again (as every order from the API has one).
      const orders = Array.from({ length: 30 }, () => ({ ...order(), deadline: Date.now() + 10_000 }))
      const bought = yield* Effect.forEach(orders, (o) => sales.buy(concert.id, o), { concurrency: "unbounded" })
      expect(lost).toBeGreaterThan(0)
      expect(bought.map((t) => t.id)).toEqual(orders.map((o) => o.ticketId))
      const written = yield* ticketsOf(concert.id)
      expect(written.length).toBe(31)
      expect(new Set(bought.map((t) => t.seat)).size).toBe(30)
    }))

  it.effect("a door that closed (its entity stopping) sends the orders through the cluster", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const locals = yield* LocalConcerts
      const concert = yield* createConcert(10)
      yield* sales.buy(concert.id, order())
      locals.open(concert.id, () => false)
      const bought = yield* Effect.forEach(Array.from({ length: 5 }, order), (o) => sales.buy(concert.id, o), {
        concurrency: "unbounded"
      })
      expect(bought).toHaveLength(5)
      expect((yield* ticketsOf(concert.id)).length).toBe(6)
    }))
})
