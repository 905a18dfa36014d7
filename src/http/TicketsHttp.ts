import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Clock, Config, Duration, Effect, Layer, Option, Schema } from "effect"
import * as crypto from "node:crypto"
import { ConcertSales } from "../actors/ConcertSales.js"
import { Api } from "../domain/Api.js"
import { BadRequest, NotFound, PurchaseRefused, Unavailable } from "../domain/Errors.js"
import { ConcertId, isUuid, TicketId, UserId } from "../domain/Ids.js"
import { IdempotencyKey, type Ticket, ticketJson, type TicketRecord } from "../domain/Ticket.js"
import { PrintsRepo } from "../sql/PrintsRepo.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { TicketsRepo } from "../sql/TicketsRepo.js"
import { BaseUrl } from "./BaseUrl.js"
import { ClosedSales } from "./ClosedSales.js"
import { clusterUnavailable } from "./clusterErrors.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { jsonArrayResponse } from "./jsonArray.js"
import { ListPages } from "./ListPages.js"
import { findOrNotFound } from "./lookup.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { positiveInteger } from "../Settings.js"

const decodeKey = Schema.decodeUnknownEither(IdempotencyKey)

/**
 * A ticket built here is valid by construction and its JSON is its encoding: written as is,
 * it skips a schema encode on the two busiest endpoints (the API test pins the bytes).
 */
const ticketResponse = (ticket: Ticket, status: 200 | 201) => HttpServerResponse.unsafeJson(ticket, { status })

export const TicketsHttpLive = HttpApiBuilder.group(Api, "tickets", (handlers) =>
  Effect.gen(function*() {
    const tickets = yield* TicketsRepo
    const users = yield* UserDirectory
    const health = yield* DatabaseHealth
    const baseUrl = yield* BaseUrl
    const sales = yield* ConcertSales
    const listPageSize = yield* positiveInteger("TICKETS_PAGE_SIZE", 1000)
    const closedSales = yield* ClosedSales
    const knownConcerts = yield* KnownConcerts
    const listPages = yield* ListPages
    // How long a buyer waits for the purchase to be saved before 503 (then it never is).
    const purchaseTimeout = Duration.toMillis(
      yield* Config.duration("PURCHASE_TIMEOUT").pipe(
        Config.validate({ message: "must be a positive duration", validation: (d) => Duration.toMillis(d) > 0 }),
        Config.withDefault(Duration.seconds(10))
      )
    )
    const prints = yield* PrintsRepo
    const printQueue = yield* PrintQueue
    const soldOut = () => new PurchaseRefused({ message: "the concert is sold out" })
    const cancelled = () => new PurchaseRefused({ message: "the concert is cancelled" })

    const findTicket = (id: string) => findOrNotFound(id, TicketId.make, tickets.findById, "ticket")

    const purchase = (concertId: string, userId: string, rawKey: string | undefined) =>
      Effect.gen(function*() {
        if (!users.has(userId)) return yield* new BadRequest({ message: `user ${userId} does not exist` })
        if (!isUuid(concertId)) return yield* new BadRequest({ message: `concert ${concertId} does not exist` })
        let idempotencyKey: string | undefined
        if (rawKey !== undefined) {
          const decoded = decodeKey(rawKey)
          if (decoded._tag === "Left") {
            return yield* new BadRequest({ message: "Idempotency-Key must be 1 to 255 printable ASCII characters" })
          }
          idempotencyKey = decoded.right
        }
        // A keyed request is answered from its key, which only the concert knows: a retry of
        // the purchase that took the last seat gets its ticket, not "sold out".
        const closed = idempotencyKey === undefined ? yield* closedSales.get(concertId) : undefined
        if (closed !== undefined) return yield* (closed === "SoldOut" ? soldOut() : cancelled())
        if (!(yield* knownConcerts.exists(ConcertId.make(concertId)))) {
          return yield* new BadRequest({ message: `concert ${concertId} does not exist` })
        }
        const now = yield* Clock.currentTimeMillis
        return yield* sales.buy(concertId, {
          ticketId: TicketId.make(crypto.randomUUID()),
          userId: UserId.make(userId),
          deadline: now + purchaseTimeout,
          ...(idempotencyKey === undefined ? {} : { idempotencyKey })
        }).pipe(
          Effect.catchTags({
            ConcertNotFound: () => Effect.fail(new BadRequest({ message: `concert ${concertId} does not exist` })),
            SoldOut: () => Effect.zipRight(closedSales.remember(concertId, "SoldOut"), Effect.fail(soldOut())),
            ConcertCancelled: () => Effect.zipRight(closedSales.remember(concertId, "Cancelled"), Effect.fail(cancelled())),
            IdempotencyKeyReused: () =>
              Effect.fail(
                new PurchaseRefused({ message: "this Idempotency-Key was already used for a different purchase" })
              ),
            JournalUnavailable: () =>
              Effect.fail(new Unavailable({ message: "the purchase could not be saved; retry" })),
            ...clusterUnavailable
          })
        )
      }).pipe(
        Effect.withSpan("TicketsHttp.purchase", { captureStackTrace: false, attributes: { concertId, userId } })
      )

    return handlers
      .handle("health", () => health.check)
      .handle("list", ({ request, urlParams }) =>
        Effect.gen(function*() {
          const { concert_id, user_id } = urlParams
          if (user_id !== undefined && !users.has(user_id)) {
            return yield* new NotFound({ message: `user ${user_id} does not exist` })
          }
          if (concert_id !== undefined) yield* knownConcerts.require(concert_id)
          const pages = yield* tickets.list({
            ...(user_id === undefined ? {} : { userId: UserId.make(user_id) }),
            ...(concert_id === undefined ? {} : { concertId: ConcertId.make(concert_id) })
          }, listPageSize, listPages.one)
          const base = baseUrl.of(request)
          return jsonArrayResponse(pages, (ticket) => ticketJson(ticket, base))
        }))
      .handle("purchase", ({ headers, payload, request }) =>
        Effect.map(
          purchase(payload.concert_id, payload.user_id, headers["idempotency-key"]),
          (ticket: TicketRecord) => ticketResponse(ticket.toTicket(baseUrl.of(request)), 201)
        ))
      .handle("get", ({ path, request }) =>
        Effect.map(findTicket(path.id), (ticket) => ticketResponse(ticket.toTicket(baseUrl.of(request)), 200)))
      // The ticket reads PENDING (durably) before the 202; the render happens in the background.
      .handle("print", ({ path }) =>
        Effect.flatMap(findOrNotFound(path.id, TicketId.make, prints.requestPrint, "ticket"), printQueue.enqueue))
      .handle("printed", ({ path }) =>
        Effect.flatMap(findTicket(path.id), (ticket) =>
          Effect.flatMap(prints.printed(ticket.id), Option.match({
            onNone: () => Effect.fail(new NotFound({ message: `ticket ${ticket.id} is not printed (${ticket.printStatus})` })),
            onSome: Effect.succeed
          }))))
  })).pipe(
  Layer.provide([
    TicketsRepo.Default,
    PrintsRepo.Default,
    UserDirectory.Default,
    DatabaseHealth.Default,
    BaseUrl.Default,
    ConcertSales.Default,
    ClosedSales.Default,
    KnownConcerts.Default,
    ListPages.Default
  ])
)
