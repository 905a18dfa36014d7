import { expect, layer } from "@effect/vitest"
import { ConfigProvider, Effect, Either, Layer } from "effect"
import * as crypto from "node:crypto"
import { ClusterLive } from "../../src/actors/Cluster.js"
import { ConcertEntityLive } from "../../src/actors/ConcertEntity.js"
import { ConcertSales } from "../../src/actors/ConcertSales.js"
import { ConcertEntity } from "../../src/domain/ConcertEntity.js"
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
