/** Reservations of several seats and invoices (ONSALE.md §2-§3). */
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { Clock, Effect, Either, Layer } from "effect"
import { ConcertSales } from "../actors/ConcertSales.js"
import { Api } from "../domain/Api.js"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import {
  ConcertCancelled,
  ConcertNotFound,
  NotEnoughSeats,
  NotSaved,
  QuantityOverLimit,
  ReservationNotFound,
  Unauthorized,
  UnknownConcert,
  UnknownUser
} from "../domain/Errors.js"
import { type ConcertId, type Named, sent, type UserId } from "../domain/Ids.js"
import { newId, organiserOf } from "../domain/Organiser.js"
import { ReservationId, type ReservationRecord, wholeQuantity } from "../domain/Reservation.js"
import { ReservationsRepo } from "../sql/ReservationsRepo.js"
import { UserDirectory } from "../sql/UserDirectory.js"
import { positiveInteger, purchaseTimeoutMillis } from "../Settings.js"
import { Access } from "./Access.js"
import { BaseUrl } from "./BaseUrl.js"
import { ClosedSales } from "./ClosedSales.js"
import { clusterUnavailable } from "./clusterErrors.js"
import { jsonArrayResponse } from "./jsonArray.js"
import { measured } from "./measured.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { ListPages } from "./ListPages.js"
import { findOrNotFound, listFilter } from "./lookup.js"
import { withSpan } from "../Spans.js"

/** The invoice sequence's name: each organiser's database has its own one sequence. */
const invoiceSequence = "default"

export const ReservationsHttpLive = HttpApiBuilder.group(Api, "reservations", (handlers) =>
  Effect.gen(function*() {
    const repo = yield* ReservationsRepo
    const users = yield* UserDirectory
    const baseUrl = yield* BaseUrl
    const sales = yield* ConcertSales
    const concert = yield* ConcertEntity.client
    const knownConcerts = yield* KnownConcerts
    const closedSales = yield* ClosedSales
    const listPages = yield* ListPages
    const listPageSize = yield* positiveInteger("TICKETS_PAGE_SIZE", 1000)
    const purchaseTimeout = yield* purchaseTimeoutMillis
    const access = yield* Access
    /** A reservation is its buyer's to read, pay and cancel by its id, whoever organises the concert. */
    const asReservationBuyer = (id: Named<ReservationId>) => access.asBuyer(id, () => ReservationNotFound.of(sent(id)))

    const answer = (request: HttpServerRequest.HttpServerRequest) => (record: ReservationRecord) =>
      HttpServerResponse.unsafeJson(record.toReservation(baseUrl.of(request)))

    const find = (id: Named<ReservationId>) => findOrNotFound(id, repo.findById, ReservationNotFound.of)

    /** A step of a reservation, decided by its concert's entity. */
    const step = (id: Named<ReservationId>, action: "checkout" | "payment" | "cancel") =>
      Effect.flatMap(find(id), (reservation) =>
        concert(reservation.concertId).Transition({ reservationId: reservation.id, action }).pipe(
          // Seats that come back through this process are sellable here at once.
          Effect.tap(() => action === "cancel" ? Effect.sync(() => closedSales.forget(reservation.concertId)) : Effect.void),
          Effect.catchTags({
            JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the reservation could not be saved; retry" })),
            ...clusterUnavailable
          }),
          withSpan(`ReservationsHttp.${action}`, { captureStackTrace: false, attributes: { reservationId: reservation.id } })
        ))

    const reserve = (concertNamed: Named<ConcertId>, user: Named<UserId>, quantity: number, key: string | undefined) =>
      Effect.gen(function*() {
        if (Either.isLeft(user) || !users.has(user.right)) return yield* UnknownUser.of(sent(user))
        if (Either.isLeft(concertNamed)) return yield* UnknownConcert.of(concertNamed.left)
        const concertId = concertNamed.right
        // As for purchases: a concert this process just heard is full (or cancelled) is answered
        // here, without a round trip, unless a key asks what it got before.
        if (!wholeQuantity(quantity)) {
          if (!(yield* knownConcerts.exists(concertId))) return yield* UnknownConcert.of(concertId)
          return yield* QuantityOverLimit.outside(yield* repo.maxPerReservation(concertId))
        }
        const closed = key === undefined ? yield* closedSales.get(concertId) : undefined
        if (closed !== undefined) return yield* (closed === "SoldOut" ? NotEnoughSeats.of(0, quantity) : ConcertCancelled.of())
        if (!(yield* knownConcerts.exists(concertId))) return yield* UnknownConcert.of(concertId)
        const now = yield* Clock.currentTimeMillis
        return yield* sales.hold(concertId, {
          _tag: "Hold",
          reservationId: ReservationId.make(newId(organiserOf(concertId))),
          userId: user.right,
          quantity,
          deadline: now + purchaseTimeout,
          ...(key === undefined ? {} : { idempotencyKey: key })
        }).pipe(
          Effect.catchTags({
            ConcertNotFound: () => Effect.fail(UnknownConcert.of(concertId)),
            NotEnoughSeats: (refused) =>
              refused.left === 0
                ? Effect.zipRight(closedSales.remember(concertId, "SoldOut", refused.reopensAt), Effect.fail(refused))
                : Effect.fail(refused),
            ConcertCancelled: (refused) => Effect.zipRight(closedSales.remember(concertId, "Cancelled"), Effect.fail(refused)),
            JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the reservation could not be saved; retry" })),
            ...clusterUnavailable
          })
        )
      }).pipe(
        access.asBuyer(concertNamed, () => UnknownConcert.of(sent(concertNamed))),
        measured("reservation", Either.getOrUndefined(concertNamed)),
        withSpan("ReservationsHttp.reserve", { captureStackTrace: false })
      )

    return handlers
      .handle("reserve", ({ headers, payload, request }) =>
        Effect.map(
          reserve(payload.concert_id, payload.user_id, payload.quantity, headers["idempotency-key"]),
          (record) => HttpServerResponse.unsafeJson(record.toReservation(baseUrl.of(request)), { status: 201 })
        ))
      .handle("get", ({ path, request }) => Effect.map(find(path.id), answer(request)).pipe(asReservationBuyer(path.id)))
      .handle("checkout", ({ path, request }) =>
        Effect.map(step(path.id, "checkout"), answer(request)).pipe(asReservationBuyer(path.id)))
      .handle("payment", ({ path, request }) =>
        Effect.map(step(path.id, "payment"), answer(request)).pipe(asReservationBuyer(path.id)))
      .handle("cancel", ({ path, request }) =>
        Effect.map(step(path.id, "cancel"), answer(request)).pipe(asReservationBuyer(path.id)))
      .handle("list", ({ request, urlParams }) =>
        Effect.gen(function*() {
          const filter = yield* listFilter(users, knownConcerts, urlParams)
          const pages = yield* repo.list(filter, listPageSize, listPages.one)
          const base = baseUrl.of(request)
          return jsonArrayResponse(pages, ({ record }) => JSON.stringify(record.toReservation(base)))
        }).pipe(access.asOwner(urlParams.concert_id, () => ConcertNotFound.of(sent(urlParams.concert_id!)))))
      .handle("invoices", ({ urlParams }) =>
        Effect.map(
          repo.invoices(invoiceSequence, urlParams.from ?? 1, urlParams.to ?? 2_147_483_647),
          (rows) =>
            HttpServerResponse.unsafeJson(rows.map((row) => ({
              number: row.number,
              reservation_id: row.reservationId,
              status: row.status
            })))
        ).pipe(access.asOwner(undefined, Unauthorized.keyNeeded)))
  })).pipe(
  Layer.provide([
    ReservationsRepo.Default,
    UserDirectory.Default,
    BaseUrl.Default,
    ConcertSales.Default,
    ClosedSales.Default,
    KnownConcerts.Default,
    ListPages.Default,
    Access.Default
  ])
)
