import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Cause, Clock, Context, Effect, Either, Exit, FiberRef, Layer, Option } from "effect"
import { type BuyRefusal, ConcertSales } from "../actors/ConcertSales.js"
import type { PurchaseOrder } from "../domain/ConcertEntity.js"
import { Api } from "../domain/Api.js"
import {
  ConcertCancelled,
  ConcertNotFound,
  NotSaved,
  SoldOut,
  TicketNotFound,
  TicketNotPrinted,
  UnknownConcert,
  UnknownUser
} from "../domain/Errors.js"
import { type ConcertId, type Named, sent, TicketId, type UserId } from "../domain/Ids.js"
import { defaultOrganiser, newId, organiserOf } from "../domain/Organiser.js"
import { ticketJson, type TicketRow } from "../domain/Ticket.js"
import { PrintsRepo } from "../sql/PrintsRepo.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { TicketsRepo } from "../sql/TicketsRepo.js"
import { Access, CurrentCaller } from "./Access.js"
import { BaseUrl } from "./BaseUrl.js"
import { ClosedSales } from "./ClosedSales.js"
import { clusterBusy } from "./clusterErrors.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { jsonArrayResponse } from "./jsonArray.js"
import { measured, recordAnswer } from "./measured.js"
import { ListPages } from "./ListPages.js"
import { findOrNotFound, listFilter } from "./lookup.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { positiveInteger, purchaseTimeoutMillis } from "../Settings.js"
import { withSpan } from "../Spans.js"

/**
 * A ticket's answer, its JSON written as text (`ticketJson`, byte for byte what encoding a
 * `Ticket` writes): a ticket built here is valid by construction, so the two busiest endpoints
 * skip building and encoding one (the API test pins the bytes).
 */
const ticketResponse = (ticket: TicketRow, base: string, status: 200 | 201) =>
  HttpServerResponse.text(ticketJson(ticket, base), { status, contentType: "application/json" })

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
    const purchaseTimeout = yield* purchaseTimeoutMillis
    const prints = yield* PrintsRepo
    const printQueue = yield* PrintQueue
    const soldOut = SoldOut.of()
    const cancelled = ConcertCancelled.of()

    const access = yield* Access
    const findTicket = (id: Named<TicketId>) => findOrNotFound(id, tickets.findById, TicketNotFound.of)
    /** A ticket is its buyer's to read and print by its id, whoever organises the concert. */
    const asTicketBuyer = (id: Named<TicketId>) => access.asBuyer(id, () => TicketNotFound.of(sent(id)))

    const tracing = yield* FiberRef.get(FiberRef.currentTracerEnabled)

    const orderOf = (concertId: ConcertId, userId: UserId, now: number, idempotencyKey: string | undefined): PurchaseOrder => ({
      ticketId: TicketId.make(newId(organiserOf(concertId))),
      userId,
      deadline: now + purchaseTimeout,
      ...(idempotencyKey === undefined ? {} : { idempotencyKey })
    })

    /** A purchase's refusal as the buyer is answered it, and what it tells `closedSales`. */
    const answerTo = (concertId: ConcertId, refusal: BuyRefusal, now: number) => {
      switch (refusal._tag) {
        case "ConcertNotFound":
          return UnknownConcert.of(concertId)
        case "SoldOut":
          closedSales.note(concertId, "SoldOut", now, refusal.reopensAt)
          return refusal
        case "ConcertCancelled":
          closedSales.note(concertId, "Cancelled", now)
          return refusal
        case "JournalUnavailable":
          return new NotSaved({ message: "the purchase could not be saved; retry" })
        case "MailboxFull":
        case "AlreadyProcessingMessage":
        case "PersistenceError":
          return clusterBusy[refusal._tag]
        default:
          return refusal
      }
    }

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
        return yield* sales.buy(concertId, orderOf(concertId, user.right, now, idempotencyKey)).pipe(
          Effect.catchAll((refusal) => Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.fail(answerTo(concertId, refusal, now))))
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
     * A buyer's purchase of a concert known here, on sale as far as this process knows, with
     * tracing off: the same checks and answers as `purchase`, in two runtime steps instead of
     * about seventy (the burst's every request comes this way). Anything else takes `purchase`.
     */
    const purchaseNow = (
      concert: Named<ConcertId>,
      user: Named<UserId>,
      idempotencyKey: string | undefined,
      request: Parameters<typeof baseUrl.of>[0]
    ) =>
      Effect.withFiberRuntime<HttpServerResponse.HttpServerResponse, Effect.Effect.Error<ReturnType<typeof purchase>>>((fiber) => {
        // Built only when taken: every request of a burst comes through here.
        const slow = () => Effect.map(purchase(concert, user, idempotencyKey), (ticket) => ticketResponse(ticket, baseUrl.of(request), 201))
        if (tracing || Either.isLeft(concert) || Either.isLeft(user) || !users.has(user.right)) return slow()
        const concertId = concert.right
        // The caller's organiser as `access.asBuyer` has it: the default one's concerts only.
        if (fiber.getFiberRef(CurrentCaller)._tag === "Organiser" || organiserOf(concertId) !== defaultOrganiser) return slow()
        if (!knownConcerts.known(concertId)) return slow()
        const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
        const now = clock.unsafeCurrentTimeMillis()
        if (idempotencyKey === undefined && closedSales.at(concertId, now) !== undefined) return slow()
        const started = performance.now()
        return Effect.async((resume) => {
          let gone = false
          sales.unsafeBuy(concertId, orderOf(concertId, user.right, now, idempotencyKey), (exit) => {
            if (gone) return
            // Run inside the entity's reply: whatever goes wrong here is this buyer's 500 alone.
            let answered: Exit.Exit<HttpServerResponse.HttpServerResponse, ReturnType<typeof answerTo>>
            try {
              answered = Exit.isSuccess(exit)
                ? Exit.succeed(ticketResponse(exit.value, baseUrl.of(request), 201))
                : Exit.failCause(Cause.map(exit.cause, (refusal) => answerTo(concertId, refusal, clock.unsafeCurrentTimeMillis())))
            } catch (defect) {
              answered = Exit.die(defect)
            }
            try {
              recordAnswer("purchase", concertId, answered, started)
            } finally {
              resume(answered)
            }
          })
          // A buyer who went away is answered nothing (and not counted); the order stands.
          return Effect.sync(() => {
            gone = true
          })
        })
      })

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
    Access.Default
  ])
)
