import { Entity, ShardingConfig } from "@effect/cluster"
import { expect, it } from "@effect/vitest"
import { Effect, Exit, FiberId, Layer } from "effect"
import * as crypto from "node:crypto"
import { type Answer, ConcertSales } from "../../src/actors/ConcertSales.js"
import { Ownership } from "../../src/actors/Ownership.js"
import { SalesDeskLive } from "../../src/actors/SalesDesk.js"
import type { Order, PurchaseOrder } from "../../src/domain/ConcertEntity.js"
import { SoldOut } from "../../src/domain/Errors.js"
import { fromDesk, SalesDesk } from "../../src/domain/SalesDesk.js"
import { ConcertId, TicketId, UserId } from "../../src/domain/Ids.js"
import { TicketRecord } from "../../src/domain/Ticket.js"

/*
 * The desk's handler on its own (`Entity.makeTestClient`), over a `ConcertSales` that answers
 * each concert's orders as the test says: at once, never, or as unknown.
 */

const order = (deadline: number): Order => ({
  ticketId: TicketId.make(crypto.randomUUID()),
  userId: UserId.make("00000000-0000-0000-0000-000000000001"),
  deadline
})

/** A desk over a `ConcertSales` that answers each order as `answer` says. */
const desk = (answer: (concertId: string, order: Order, done: Answer<never, SoldOut>) => void) =>
  Effect.gen(function*() {
    const relay: ConcertSales["relay"] = (concertId, orders, done) =>
      orders.forEach((order, index) => answer(concertId, order, (exit) => done(index, exit)))
    const sales = Layer.succeed(ConcertSales, { relay } as unknown as ConcertSales)
    const makeClient = yield* Entity.makeTestClient(SalesDesk, SalesDeskLive.pipe(Layer.provide([sales, Ownership.Everything])))
    return yield* makeClient("desk-0")
  }).pipe(Effect.provide(ShardingConfig.layer()))

it.scopedLive("a concert held up elsewhere does not hold up the others' answers past their deadline", () =>
  Effect.gen(function*() {
    // Concert "fast" is answered at once; "slow" never (its database stalled).
    const client = yield* desk((concertId, _order, done) => {
      if (concertId === "fast") done(Exit.fail(SoldOut.of()))
    })
    const deadline = Date.now() + 300
    const started = Date.now()
    const answers = yield* client.Orders({
      concerts: [{ concertId: "slow", orders: [order(deadline + 5_000)] }, { concertId: "fast", orders: [order(deadline), order(deadline)] }]
    })
    // Answered a little after the earliest deadline, well before the sender gives up on it (a
    // second after): the fast concert's outcomes, and none for the slow one (sent again).
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(answers).toEqual([[], [SoldOut.of(), SoldOut.of()]])
  }))

it.scopedLive("an order left unknown leaves its concert without outcomes, and the others are answered at once", () =>
  Effect.gen(function*() {
    const client = yield* desk((concertId, _order, done) =>
      done(concertId === "stopping" ? Exit.interrupt(FiberId.none) : Exit.fail(SoldOut.of()))
    )
    const started = Date.now()
    const deadline = Date.now() + 10_000
    const answers = yield* client.Orders({
      concerts: [
        { concertId: "open", orders: [order(deadline)] },
        { concertId: "stopping", orders: [order(deadline), order(deadline)] }
      ]
    })
    expect(answers).toEqual([[SoldOut.of()], []])
    expect(Date.now() - started).toBeLessThan(1_000)
  }))

it.scopedLive("a purchase's own new ticket crosses as its seat, made whole again from its order; any other ticket crosses whole", () =>
  Effect.gen(function*() {
    const concertId = ConcertId.make(crypto.randomUUID())
    const own = order(Date.now() + 10_000) as PurchaseOrder
    const repeat = order(Date.now() + 10_000) as PurchaseOrder
    const ticket = (id: string, printStatus: "NOT_PRINTED" | "PRINTED") =>
      new TicketRecord({ id: TicketId.make(id), concertId, userId: own.userId, seat: 7, printStatus })
    // The repeat of a keyed purchase is answered with the first purchase's ticket, printed since.
    const earlier = ticket(crypto.randomUUID(), "PRINTED")
    const client = yield* desk((_concertId, o, done) =>
      (done as unknown as Answer<TicketRecord, never>)(Exit.succeed(o === own ? ticket(own.ticketId, "NOT_PRINTED") : earlier))
    )
    const answers = yield* client.Orders({ concerts: [{ concertId, orders: [own, repeat] }] })
    expect(answers).toEqual([[7, earlier]])
    expect(answers[0]!.map((answer, j) => fromDesk(concertId, [own, repeat][j]!, answer))).toEqual([
      ticket(own.ticketId, "NOT_PRINTED"),
      earlier
    ])
  }))
