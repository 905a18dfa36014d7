import { expect, layer } from "@effect/vitest"
import type * as Sharding from "@effect/cluster/Sharding"
import * as SqlClient from "@effect/sql/SqlClient"
import { ConfigProvider, Context, Effect, Either, Exit, Fiber, FiberId, Layer, Metric, Scope } from "effect"
import * as crypto from "node:crypto"
import { ClusterLive } from "../../src/actors/Cluster.js"
import { ConcertEntityLive } from "../../src/actors/ConcertEntity.js"
import { ConcertSales } from "../../src/actors/ConcertSales.js"
import { DeskRoutes } from "../../src/actors/DeskRoutes.js"
import { type Door, LocalConcerts, type LocalOrders } from "../../src/actors/LocalConcerts.js"
import { Ownership } from "../../src/actors/Ownership.js"
import { SalesDeskLive } from "../../src/actors/SalesDesk.js"
import { SalesDesk } from "../../src/domain/SalesDesk.js"
import * as Metrics from "../../src/Metrics.js"
import { ConcertEntity, type PurchaseOrder } from "../../src/domain/ConcertEntity.js"
import { SoldOut } from "../../src/domain/Errors.js"
import { TicketId, UserId } from "../../src/domain/Ids.js"
import { ConcertsRepo } from "../../src/sql/ConcertsRepo.js"
import { TestDatabase } from "../fixtures/Database.js"

const user = UserId.make("00000000-0000-0000-0000-000000000001")
const order = () => ({ ticketId: TicketId.make(crypto.randomUUID()), userId: user })

/** Concert entities whose mailbox holds a single message. */
const TinyMailboxes = Layer.mergeAll(ConcertEntityLive, ConcertSales.Default, ConcertsRepo.Default).pipe(
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

/**
 * Concert entities as `npm start` runs them, with the idle time given. With tracing off (as
 * without an exporter), batches through a door are sent without a fiber.
 */
const withIdle = (maxIdle: string, tracing = true) =>
  Layer.mergeAll(ConcertEntityLive, ConcertSales.Default, ConcertsRepo.Default, LocalConcerts.Default).pipe(
    Layer.provideMerge(ClusterLive),
    Layer.provide(Layer.setTracerEnabled(tracing)),
    Layer.provideMerge(TestDatabase),
    Layer.provide(Layer.setConfigProvider(
      ConfigProvider.fromMap(new Map([["CONCERT_MAX_IDLE", maxIdle]])).pipe(
        ConfigProvider.orElse(() => ConfigProvider.fromEnv())
      )
    ))
  )

const ticketsOf = (concertId: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql<{ readonly id: string }>`SELECT id FROM tickets WHERE concert_id = ${concertId}`.pipe(
      Effect.map((rows) => rows.map((row) => row.id)),
      Effect.orDie
    ))

/**
 * A concert whose entity runs here after its first order (sent through the cluster, which
 * starts it), and its door replaced by `door(real)`, which counts what it is handed.
 */
const runningHere = (capacity: number, door: (real: Door) => Door = (real) => real) =>
  Effect.gen(function*() {
    const sales = yield* ConcertSales
    const locals = yield* LocalConcerts
    const concert = yield* createConcert(capacity)
    expect(locals.door(concert.id)).toBeUndefined()
    yield* sales.buy(concert.id, order())
    const real = locals.door(concert.id)
    expect(real).toBeDefined()
    const counted = { orders: 0 }
    const replaced = door(real!)
    locals.open(concert.id, (orders) => {
      counted.orders += orders.orders.length
      return replaced(orders)
    })
    const buy = (orders: ReadonlyArray<PurchaseOrder>) =>
      Effect.forEach(orders, (o) => sales.buy(concert.id, o), { concurrency: "unbounded" })
    return { concert, counted, buy }
  })

for (const tracing of [true, false]) {
layer(withIdle("5 minutes", tracing), { excludeTestServices: true, timeout: "60 seconds" })(`ConcertSales in the concert's own process, tracing ${tracing ? "on" : "off"}`, (it) => {
  it.effect("once the concert runs here, its orders go through its door, not the cluster", () =>
    Effect.gen(function*() {
      const { buy, concert, counted } = yield* runningHere(100)
      const bought = yield* buy(Array.from({ length: 40 }, order))
      expect(counted.orders).toBe(40)
      expect(new Set(bought.map((t) => t.seat)).size).toBe(40)
      expect((yield* ticketsOf(concert.id)).length).toBe(41)
    }))

  it.effect("orders whose answer is lost at the door are sent again through the cluster and bought once", () =>
    Effect.gen(function*() {
      // The entity writes the orders, and stops before answering: the sender cannot tell.
      const { buy, concert, counted } = yield* runningHere(100, (real) => (orders) =>
        real({
          ...orders,
          done: (exit) => orders.done(Exit.isSuccess(exit) ? Exit.interrupt(FiberId.none) : exit)
        }))
      // Only an order with a deadline is sent again (as every order from the API has one).
      const orders = Array.from({ length: 30 }, () => ({ ...order(), deadline: Date.now() + 10_000 }))
      const bought = yield* buy(orders)
      expect(counted.orders).toBeGreaterThan(0)
      expect(bought.map((t) => t.id)).toEqual(orders.map((o) => o.ticketId))
      expect((yield* ticketsOf(concert.id)).length).toBe(31)
      expect(new Set(bought.map((t) => t.seat)).size).toBe(30)
    }))

  it.effect("a desk's orders for one concert reach its entity together, as one batch", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const handed: Array<number> = []
      const { concert } = yield* runningHere(100, (real) => (orders) => {
        handed.push(orders.orders.length)
        return real(orders)
      })
      const orders = Array.from({ length: 10 }, order)
      const outcomes = yield* Effect.async<ReadonlyArray<Exit.Exit<unknown, unknown>>>((resume) => {
        const answered = new Array<Exit.Exit<unknown, unknown>>(orders.length)
        let left = orders.length
        sales.relay(concert.id, orders, (index, exit) => {
          answered[index] = exit
          if (--left === 0) resume(Effect.succeed(answered))
        })
      })
      // Handed over one by one, the first order found the line idle and went alone, the other
      // nine a batch (a journal write) later: with tracing off, whose sender is the answer
      // before (with it on, a sender fiber started later and found all ten).
      expect(handed).toEqual([10])
      expect(outcomes.map((exit) => Exit.isSuccess(exit) && (exit.value as { id: string }).id)).toEqual(orders.map((o) => o.ticketId))
      expect((yield* ticketsOf(concert.id)).length).toBe(11)
    }))

  it.effect("a desk's orders for a concert that runs here go in its own buyers' next batch", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const handed: Array<number> = []
      let release: (() => void) | undefined
      // The door holds its first batch until released.
      const { concert } = yield* runningHere(100, (real) => (orders) => {
        handed.push(orders.orders.length)
        if (handed.length > 1) return real(orders)
        release = () => void real(orders)
        return true
      })
      const first = yield* Effect.fork(sales.buy(concert.id, order()))
      while (release === undefined) yield* Effect.sleep("10 millis")
      const mine = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 5 }, order), (o) => sales.buy(concert.id, o), { concurrency: "unbounded" })
      )
      const orders = Array.from({ length: 4 }, order)
      const relayed = yield* Effect.fork(Effect.async<ReadonlyArray<Exit.Exit<unknown, unknown>>>((resume) => {
        const answered = new Array<Exit.Exit<unknown, unknown>>(orders.length)
        let left = orders.length
        sales.relay(concert.id, orders, (index, exit) => {
          answered[index] = exit
          if (--left === 0) resume(Effect.succeed(answered))
        })
      }))
      yield* Effect.sleep("50 millis")
      expect(handed).toEqual([1])
      release!()
      yield* Fiber.join(first)
      expect(yield* Fiber.join(mine)).toHaveLength(5)
      expect((yield* Fiber.join(relayed)).every(Exit.isSuccess)).toBe(true)
      // One line for the concert: the entity is handed one batch at a time.
      expect(handed).toEqual([1, 9])
      expect((yield* ticketsOf(concert.id)).length).toBe(11)
    }))

  it.effect("a door that closed (its entity stopping) sends the orders through the cluster", () =>
    Effect.gen(function*() {
      const { buy, concert } = yield* runningHere(10, () => () => false)
      expect(yield* buy(Array.from({ length: 5 }, order))).toHaveLength(5)
      expect((yield* ticketsOf(concert.id)).length).toBe(6)
    }))
})
}

layer(withIdle("10 seconds"), { excludeTestServices: true, timeout: "60 seconds" })("ConcertSales with a short idle time", (it) => {
  it.effect("an idle time no longer than the purchase timeout sends every batch through the cluster", () =>
    Effect.gen(function*() {
      const { buy, concert, counted } = yield* runningHere(50)
      expect(yield* buy(Array.from({ length: 20 }, order))).toHaveLength(20)
      expect(counted.orders).toBe(0)
      expect((yield* ticketsOf(concert.id)).length).toBe(21)
    }))
})

layer(withIdle("5 minutes", false), { excludeTestServices: true, timeout: "60 seconds" })("ConcertSales at shutdown", (it) => {
  it.effect("every buyer is answered, and a batch answered after it sends nothing more", () =>
    Effect.gen(function*() {
      const { concert } = yield* runningHere(10)
      const locals = yield* LocalConcerts
      // A ConcertSales of its own, closed below, sharing this process's entities and doors.
      const scope = yield* Scope.make()
      const sales = yield* Layer.buildWithScope(
        ConcertSales.DefaultWithoutDependencies.pipe(
          Layer.provide([Ownership.Default, DeskRoutes.Default]),
          Layer.provide(Layer.setTracerEnabled(false))
        ),
        scope
      ).pipe(Effect.map(Context.get(ConcertSales)))
      yield* sales.buy(concert.id, order()) // through the cluster first, then through the door
      const real = locals.door(concert.id)!
      // The door takes the next batch and holds it unanswered.
      const handed: Array<LocalOrders> = []
      locals.open(concert.id, (orders) => {
        handed.push(orders)
        return handed.length === 1 ? true : real(orders)
      })
      const first = yield* Effect.fork(sales.buy(concert.id, order()))
      while (handed.length === 0) yield* Effect.sleep("10 millis")
      const second = yield* Effect.fork(sales.buy(concert.id, order()))
      yield* Effect.sleep("50 millis")
      expect(handed).toHaveLength(1)

      yield* Scope.close(scope, Exit.void)
      expect(Exit.isInterrupted(yield* Fiber.await(first))).toBe(true)
      expect(Exit.isInterrupted(yield* Fiber.await(second))).toBe(true)
      // The held batch is answered after the shutdown: the buyer behind it is not sent.
      handed[0]!.done(Exit.succeed([SoldOut.of()]))
      yield* Effect.sleep("50 millis")
      expect(handed).toHaveLength(1)
      // And whoever comes now is answered at once.
      expect(Exit.isInterrupted(yield* Effect.exit(sales.buy(concert.id, order())))).toBe(true)
      expect(handed).toHaveLength(1)
    }))
})

/**
 * Every concert routed to a desk that runs in this same process, as when a desk's shard has
 * just moved to the runner that sends to it.
 */
const throughOwnDesk = (tracing: boolean, desk: Layer.Layer<never, never, ConcertSales | Sharding.Sharding | Ownership> = SalesDeskLive) =>
  Layer.mergeAll(ConcertEntityLive, desk, ConcertsRepo.Default).pipe(
    Layer.provideMerge(ConcertSales.DefaultWithoutDependencies),
    Layer.provideMerge(LocalConcerts.Default),
    Layer.provide([Ownership.Default, Layer.succeed(DeskRoutes, new DeskRoutes({ deskOf: () => "desk-0" }))]),
    Layer.provideMerge(ClusterLive),
    Layer.provide(Layer.setTracerEnabled(tracing)),
    Layer.provideMerge(TestDatabase)
  )

// With tracing off, batches go to the desk without a sender fiber (`pump`); with it on, through one.
for (const tracing of [false, true]) {
layer(throughOwnDesk(tracing), { excludeTestServices: true, timeout: "60 seconds" })(`ConcertSales through a desk (tracing ${tracing ? "on" : "off"})`, (it) => {
  it.effect("orders sent to a desk that turns out to be this process's are sold, not left waiting behind themselves", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const concert = yield* createConcert(100)
      const before = yield* Metric.value(Metrics.deskOrders)
      const orders = Array.from({ length: 60 }, order)
      const bought = yield* Effect.forEach(orders, (o) => sales.buy(concert.id, o), { concurrency: "unbounded" })
      expect(bought.map((t) => t.id)).toEqual(orders.map((o) => o.ticketId))
      expect(new Set(bought.map((t) => t.seat)).size).toBe(60)
      expect((yield* Metric.value(Metrics.deskOrders)).count).toBeGreaterThan(before.count)
      expect((yield* ticketsOf(concert.id)).length).toBe(60)
    }))
})
}

layer(throughOwnDesk(false), { excludeTestServices: true, timeout: "60 seconds" })("ConcertSales with a desk's orders in a concert's own line", (it) => {
  it.effect("a batch that carries a desk's orders goes through the cluster, not to a desk, once the door is gone", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const locals = yield* LocalConcerts
      const concert = yield* createConcert(100)
      // The first order goes to the desk, which sends it through the cluster: the entity starts here.
      yield* sales.buy(concert.id, order())
      const real = locals.door(concert.id)
      expect(real).toBeDefined()
      let release: (() => void) | undefined
      // Holds its first batch until released.
      const holding: Door = (orders) => {
        if (release !== undefined) return real!(orders)
        release = () => void real!(orders)
        return true
      }
      locals.open(concert.id, holding)
      const first = yield* Effect.fork(sales.buy(concert.id, order()))
      while (release === undefined) yield* Effect.sleep("10 millis")
      // A desk's orders join the line while its batch is at the door; then the door goes.
      const orders = Array.from({ length: 3 }, order)
      const relayed = yield* Effect.fork(Effect.async<number>((resume) => {
        let left = orders.length
        sales.relay(concert.id, orders, (_, exit) => {
          if (Exit.isSuccess(exit) && --left === 0) resume(Effect.succeed(orders.length))
        })
      }))
      const mine = yield* Effect.fork(sales.buy(concert.id, order()))
      yield* Effect.sleep("50 millis")
      locals.close(concert.id, holding)
      const messages = (yield* Metric.value(Metrics.deskMessages)).count
      release!()
      yield* Fiber.join(first)
      yield* Fiber.join(mine)
      expect(yield* Fiber.join(relayed)).toBe(3)
      expect((yield* Metric.value(Metrics.deskMessages)).count).toBe(messages)
      expect((yield* ticketsOf(concert.id)).length).toBe(6)
    }))
})

/** A desk that never learns an outcome in time: it answers every concert "not known". */
let forgetfulCalls = 0
const ForgetfulDesk = SalesDesk.toLayer(Effect.succeed({
  Orders: ({ payload }) =>
    Effect.sync(() => {
      forgetfulCalls++
      return payload.concerts.map(() => [])
    })
}))

for (const tracing of [false, true]) {
layer(throughOwnDesk(tracing, ForgetfulDesk), { excludeTestServices: true, timeout: "60 seconds" })(`ConcertSales through a forgetful desk (tracing ${tracing ? "on" : "off"})`, (it) => {
  it.effect("batches whose outcome the desk does not know are sent again through the cluster, and sold once", () =>
    Effect.gen(function*() {
      const sales = yield* ConcertSales
      const concert = yield* createConcert(100)
      const calls = forgetfulCalls
      // Only an order with a deadline is sent again (as every order from the API has one).
      const orders = Array.from({ length: 30 }, () => ({ ...order(), deadline: Date.now() + 10_000 }))
      const bought = yield* Effect.forEach(orders, (o) => sales.buy(concert.id, o), { concurrency: "unbounded" })
      expect(forgetfulCalls).toBeGreaterThan(calls)
      expect(bought.map((t) => t.id)).toEqual(orders.map((o) => o.ticketId))
      expect(new Set(bought.map((t) => t.seat)).size).toBe(30)
      expect((yield* ticketsOf(concert.id)).length).toBe(30)
    }))
})
}
