import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, Either, Layer, Option } from "effect"
import { ConcertSales } from "../actors/ConcertSales.js"
import { Api } from "../domain/Api.js"
import {
  ConcertCancelled,
  ConcertNotFound,
  SoldOut,
  TicketNotFound,
  TicketNotPrinted,
  UnknownConcert,
  UnknownUser
} from "../domain/Errors.js"
import { type ConcertId, type Named, sent, type TicketId, type UserId } from "../domain/Ids.js"
import { ticketJson } from "../domain/Ticket.js"
import { PrintsRepo } from "../sql/PrintsRepo.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { TicketsRepo } from "../sql/TicketsRepo.js"
import { Access } from "./Access.js"
import { BaseUrl } from "./BaseUrl.js"
import { ClosedSales } from "./ClosedSales.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { jsonArrayResponse } from "./jsonArray.js"
import { measured } from "./measured.js"
import { ListPages } from "./ListPages.js"
import { findOrNotFound, listFilter } from "./lookup.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { positiveInteger } from "../Settings.js"
import { withSpan } from "../Spans.js"
import { DecidedPurchase, Purchases, ticketResponse } from "./Purchases.js"

export const TicketsHttpLive = HttpApiBuilder.group(Api, "tickets", (handlers) =>
  Effect.gen(function*() {
    const tickets = yield* TicketsRepo
    const users = yield* UserDirectory
    const health = yield* DatabaseHealth
    const baseUrl = yield* BaseUrl
    const sales = yield* ConcertSales
    const purchases = yield* Purchases
    const listPageSize = yield* positiveInteger("TICKETS_PAGE_SIZE", 1000)
    const closedSales = yield* ClosedSales
    const knownConcerts = yield* KnownConcerts
    const listPages = yield* ListPages
    const prints = yield* PrintsRepo
    const printQueue = yield* PrintQueue
    const soldOut = SoldOut.of()
    const cancelled = ConcertCancelled.of()

    const access = yield* Access
    const findTicket = (id: Named<TicketId>) => findOrNotFound(id, tickets.findById, TicketNotFound.of)
    /** A ticket is its buyer's to read and print by its id, whoever organises the concert. */
    const asTicketBuyer = (id: Named<TicketId>) => access.asBuyer(id, () => TicketNotFound.of(sent(id)))

    /** Any purchase: every check, the caller's organiser, its span. */
    const purchase = (concert: Named<ConcertId>, user: Named<UserId>, idempotencyKey: string | undefined) =>
      Effect.gen(function*() {
        if (Either.isLeft(user) || !users.has(user.right)) return yield* UnknownUser.of(sent(user))
        if (Either.isLeft(concert)) return yield* UnknownConcert.of(concert.left)
        const concertId = concert.right
        // A keyed request is answered from its key, which only the concert knows: a retry of
        // the purchase that took the last seat gets its ticket, not "sold out".
        const closed = idempotencyKey === undefined ? yield* closedSales.get(concertId) : undefined
        if (closed !== undefined) return yield* (closed === "SoldOut" ? soldOut : cancelled)
        if (!(yield* knownConcerts.exists(concertId))) return yield* UnknownConcert.of(concertId)
        const now = yield* Clock.currentTimeMillis
        return yield* sales.buy(concertId, purchases.orderOf(concertId, user.right, now, idempotencyKey)).pipe(
          Effect.catchAll((refusal) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.fail(purchases.answerTo(concertId, refusal, now))))
        )
      }).pipe(
        access.asBuyer(concert, () => UnknownConcert.of(sent(concert))),
        measured("purchase", Either.getOrUndefined(concert)),
        withSpan("TicketsHttp.purchase", {
          captureStackTrace: false,
          attributes: { concertId: sent(concert), userId: sent(user) }
        })
      )

    /**
     * A purchase: the busiest way when it can take it (`Purchases.now`), else `purchase`. One
     * that `Purchases.route` already made (a refusal or a defect) is answered as it came out.
     */
    const purchaseNow = (
      concert: Named<ConcertId>,
      user: Named<UserId>,
      idempotencyKey: string | undefined,
      request: Parameters<typeof baseUrl.of>[0]
    ) =>
      Effect.withFiberRuntime<HttpServerResponse.HttpServerResponse, Effect.Effect.Error<ReturnType<typeof purchase>>>((fiber) =>
        fiber.getFiberRef(DecidedPurchase) ??
          purchases.now(fiber, concert, user, idempotencyKey, request) ??
          Effect.map(purchase(concert, user, idempotencyKey), (ticket) => ticketResponse(ticket, baseUrl.of(request), 201))
      )

    return handlers
      .handle("health", () => health.check)
      .handle("list", ({ request, urlParams }) =>
        Effect.gen(function*() {
          const filter = yield* listFilter(users, knownConcerts, urlParams)
          const pages = yield* tickets.list(filter, listPageSize, listPages.one)
          const base = baseUrl.of(request)
          return jsonArrayResponse(pages, (ticket) => ticketJson(ticket, base))
        }).pipe(access.asOwner(urlParams.concert_id, () => ConcertNotFound.of(sent(urlParams.concert_id!)))))
      .handle("purchase", ({ headers, payload, request }) =>
        purchaseNow(payload.concert_id, payload.user_id, headers["idempotency-key"], request))
      .handle("get", ({ path, request }) =>
        Effect.map(findTicket(path.id), (ticket) => ticketResponse(ticket, baseUrl.of(request), 200)).pipe(
          asTicketBuyer(path.id)
        ))
      // The ticket reads PENDING (durably) before the 202; the render happens in the background.
      .handle("print", ({ path }) =>
        Effect.flatMap(findOrNotFound(path.id, prints.requestPrint, TicketNotFound.of), printQueue.enqueue).pipe(
          asTicketBuyer(path.id)
        ))
      .handle("printed", ({ path }) =>
        Effect.flatMap(findTicket(path.id), (ticket) =>
          Effect.flatMap(prints.printed(ticket.id), Option.match({
            onNone: () => Effect.fail(TicketNotPrinted.of(ticket.id, ticket.printStatus)),
            onSome: Effect.succeed
          }))).pipe(asTicketBuyer(path.id)))
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
    ListPages.Default,
    Access.Default,
    Purchases.Default
  ])
)
