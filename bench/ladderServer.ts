/**
 * The purchase built up a step at a time, for `npm run bench -- ladder`: the same one-endpoint
 * HttpApi as the empty ceiling (`bench/ceilingServer.ts`), whose handler does more at each step.
 *   LADDER=lookups: + the user lookup, the closed-sales check and the known-concert check,
 *                   then a constant ticket;
 *   LADDER=sales:   + `ConcertSales` (batching per concert) to an entity that answers every
 *                   order at once (through its door in this process, as the real one);
 *   LADDER=entity:  + the real concert entity (its ledger, batch planning, outcomes) with a
 *                   journal whose write does nothing;
 *   LADDER=journal: + the journal write: the whole purchase, without the rest of the service
 *                   (the other endpoints, the render workers, the sweeps, metrics).
 * Needs DATABASE_URL (a database of its own: it runs as a `single` cluster process).
 */
import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import * as Entity from "@effect/cluster/Entity"
import { Clock, Config, Context, Effect, Exit, Layer } from "effect"
import * as crypto from "node:crypto"
import { ClusterLive } from "../src/actors/Cluster.js"
import { ConcertEntityLayer } from "../src/actors/ConcertEntity.js"
import { ConcertSales } from "../src/actors/ConcertSales.js"
import { HoldTimers } from "../src/actors/HoldTimers.js"
import { RoutedSqlLive } from "../src/sql/Organisers.js"
import { Ownership } from "../src/actors/Ownership.js"
import { ConcertEntity, type Order } from "../src/domain/ConcertEntity.js"
import { LocalConcerts } from "../src/actors/LocalConcerts.js"
import { ConcertId, TicketId, type UserId } from "../src/domain/Ids.js"
import { PurchaseTicket, Ticket, TicketRecord } from "../src/domain/Ticket.js"
import { ClosedSales } from "../src/http/ClosedSales.js"
import { KnownConcerts } from "../src/http/KnownConcerts.js"
import { ServiceServer } from "../src/http/ServiceServer.js"
import { ConcertJournal } from "../src/sql/ConcertJournal.js"
import { DatabaseLive } from "../src/sql/Database.js"
import { UserDirectory } from "../src/sql/UserDirectory.js"

class LadderApi extends HttpApi.make("Ladder")
  .add(HttpApiGroup.make("tickets").add(
    HttpApiEndpoint.post("purchase", "/tickets").setPayload(PurchaseTicket).addSuccess(Ticket, { status: 201 })
  ))
  .prefix("/api/v1")
{}

const base = "http://127.0.0.1/api/v1"

type Step = "lookups" | "sales" | "entity" | "journal"

const handlers = (step: Step) =>
  HttpApiBuilder.group(LadderApi, "tickets", (handlers) =>
    Effect.gen(function*() {
      const users = yield* UserDirectory
      const closedSales = yield* ClosedSales
      const knownConcerts = yield* KnownConcerts
      const sales = yield* ConcertSales
      // As the service's handler does it (TicketsHttp's `purchaseNow`): checks in plain code, then
      // one wait for the order's batch.
      const bought = (concertId: ConcertId, userId: UserId, now: number) =>
        step === "lookups"
          ? Effect.succeed(new TicketRecord({ id: TicketId.make(crypto.randomUUID()), concertId, userId, seat: 1, printStatus: "NOT_PRINTED" }).toTicket(base))
          : Effect.async<Ticket>((resume) =>
            sales.unsafeBuy(concertId, { ticketId: TicketId.make(crypto.randomUUID()), userId, deadline: now + 10_000 }, (exit) =>
              resume(Exit.isSuccess(exit) ? Exit.succeed(exit.value.toTicket(base)) : Exit.die(exit.cause))))
      return handlers.handle("purchase", ({ payload }) =>
        Effect.withFiberRuntime<Ticket>((fiber) => {
          const { concert_id: concert, user_id: user } = payload
          if (concert._tag === "Left" || user._tag === "Left" || !users.has(user.right)) return Effect.die("unknown")
          const concertId = concert.right
          const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
          if (closedSales.at(concertId, now) !== undefined) return Effect.die("closed")
          if (knownConcerts.known(concertId)) return bought(concertId, user.right, now)
          return Effect.flatMap(knownConcerts.exists(concertId), (found) => found ? bought(concertId, user.right, now) : Effect.die("unknown concert"))
        }))
    })
  )

const concertOfLadder = "00000000-0000-4000-8000-000000000001"

/** An entity that answers every order at once with a ticket, remembering nothing. */
const AtOnce = ConcertEntity.toLayerMailbox(Effect.gen(function*() {
  const locals = yield* LocalConcerts
  const address = yield* Entity.CurrentAddress
  const tickets = (orders: ReadonlyArray<Order>) =>
    orders.map((order) => {
      if (!("ticketId" in order)) throw new Error("the ladder only buys")
      return new TicketRecord({ id: order.ticketId, concertId: ConcertId.make(concertOfLadder), userId: order.userId, seat: 1, printStatus: "NOT_PRINTED" })
    })
  return (mailbox, replier) => {
    locals.open(address.entityId, (local) => {
      local.done(Exit.succeed(tickets(local.orders)))
      return true
    })
    return mailbox.take.pipe(
      Effect.flatMap((request) =>
        request.tag === "Purchases"
          ? replier.succeed(request, tickets((request.payload as { readonly orders: ReadonlyArray<Order> }).orders))
          : Effect.die("not in the ladder")
      ),
      Effect.forever,
      Effect.orDie
    )
  }
}))

/** The real journal, except that appending tickets writes nothing. */
const JournalWithoutWrites = Layer.effect(
  ConcertJournal,
  Effect.map(ConcertJournal, (journal) =>
    new ConcertJournal({
      ...journal,
      append: () => Effect.void,
      // Told after the call, as the real writer tells it.
      unsafeAppend: (_organiser, _ledger, _rows, done) => {
        queueMicrotask(() => done(Exit.void))
        return () => {}
      }
    }))
).pipe(Layer.provide(ConcertJournal.Default))

const entityOf = (step: Step) =>
  step === "lookups" ? Layer.empty
  : step === "sales" ? AtOnce.pipe(Layer.provide(LocalConcerts.Default))
  : ConcertEntityLayer.pipe(
    Layer.provide([
      step === "entity" ? JournalWithoutWrites : ConcertJournal.Default,
      HoldTimers.Default,
      Ownership.Default,
      LocalConcerts.Default
    ])
  )

const ServerLive = NodeHttpServer.layerConfig(() => new ServiceServer({ keepAliveTimeout: 65_000 }), {
  port: Config.port("PORT"),
  host: Config.succeed("127.0.0.1")
})

Layer.unwrapEffect(Effect.map(Config.literal("lookups", "sales", "entity", "journal")("LADDER"), (step) =>
  Layer.merge(
    HttpApiBuilder.serve().pipe(
      Layer.provide(HttpApiBuilder.api(LadderApi).pipe(Layer.provide(handlers(step)))),
      Layer.provide([UserDirectory.Default, ClosedSales.Default, KnownConcerts.Default, ConcertSales.Default])
    ),
    entityOf(step)
  ))).pipe(
  Layer.provide(ServerLive),
  Layer.provide(RoutedSqlLive),
  Layer.provide(ClusterLive),
  Layer.provide(DatabaseLive),
  Layer.provide(Layer.setTracerEnabled(false)),
  Layer.launch,
  NodeRuntime.runMain
)
