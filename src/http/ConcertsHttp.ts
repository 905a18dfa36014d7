import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { Api } from "../domain/Api.js"
import { ConcertEntity } from "../domain/ConcertEntity.js"
import { ConcertNotFound, NotSaved, PlanNotReady } from "../domain/Errors.js"
import { ConcertsRepo } from "../sql/ConcertsRepo.js"
import { ReservationsRepo } from "../sql/ReservationsRepo.js"
import { saleSettings } from "../domain/Sale.js"
import { PrintQueue } from "../workers/PrintQueue.js"
import { SeatingPlans } from "../workers/SeatingPlans.js"
import { ClosedSales } from "./ClosedSales.js"
import { DatabaseHealth } from "./DatabaseHealth.js"
import { KnownConcerts } from "./KnownConcerts.js"
import { clusterUnavailable } from "./clusterErrors.js"
import { jsonArrayResponse } from "./jsonArray.js"
import { ListPages } from "./ListPages.js"
import { findOrNotFound } from "./lookup.js"
import { positiveInteger } from "../Settings.js"
import { concertJson } from "../domain/Concert.js"

export const ConcertsHttpLive = HttpApiBuilder.group(Api, "concerts", (handlers) =>
  Effect.gen(function*() {
    const concerts = yield* ConcertsRepo
    const health = yield* DatabaseHealth
    const concert = yield* ConcertEntity.client
    const closedSales = yield* ClosedSales
    const printQueue = yield* PrintQueue
    const seating = yield* SeatingPlans
    const knownConcerts = yield* KnownConcerts
    const reservations = yield* ReservationsRepo
    const listPages = yield* ListPages
    const listPageSize = yield* positiveInteger("TICKETS_PAGE_SIZE", 1000)

    return handlers
      .handle("health", () => health.check)
      .handle("list", () => Effect.map(concerts.list(listPageSize, listPages.one), (pages) => jsonArrayResponse(pages, concertJson)))
      .handle("create", ({ payload }) => Effect.tap(concerts.create(payload), (created) => knownConcerts.add(created.id)))
      .handle("get", ({ path }) => findOrNotFound(path.id, concerts.findById, ConcertNotFound.of))
      .handle("update", ({ path, payload }) =>
        knownConcerts.require(path.id).pipe(
          Effect.flatMap((id) =>
            concert(id).Update(payload).pipe(
              Effect.tap((updated) => {
                closedSales.forget(id)
                return printQueue.concertChanged(id, updated.date)
              }),
              Effect.catchTags({
                JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the concert could not be saved; retry" })),
                ...clusterUnavailable
              }),
              Effect.withSpan("ConcertsHttp.update", { captureStackTrace: false, attributes: { concertId: id } })
            )
          )
        ))
      .handle("sale", ({ path }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) =>
          Effect.flatMap(reservations.sale(id), Option.match({
            onNone: () => Effect.fail(ConcertNotFound.of(id)),
            onSome: (sale) => Effect.succeed(saleSettings(id, sale))
          }))))
      .handle("changeSale", ({ path, payload }) =>
        Effect.flatMap(knownConcerts.require(path.id), (id) =>
          concert(id).ChangeSale(payload).pipe(
            Effect.catchTags({
              JournalUnavailable: () => Effect.fail(new NotSaved({ message: "the sale settings could not be saved; retry" })),
              ...clusterUnavailable
            })
          )))
      .handle("seats", ({ path, request }) =>
        Effect.gen(function*() {
          // A concert seen once is known without a query: a plan reader polling costs one look-up.
          const id = yield* knownConcerts.require(path.id)
          const latest = yield* seating.latest(id)
          if (Option.isNone(latest)) return yield* PlanNotReady.of()
          const { etag, gzip } = latest.value
          const headers = { etag, vary: "accept-encoding", "cache-control": "no-cache" }
          const matches = (request.headers["if-none-match"] ?? "").split(",").map((tag) => tag.trim())
          if (matches.includes(etag) || matches.includes("*")) return HttpServerResponse.empty({ status: 304, headers })
          if (/\bgzip\b/.test(request.headers["accept-encoding"] ?? "")) {
            return HttpServerResponse.uint8Array(gzip, {
              contentType: "image/svg+xml",
              headers: { ...headers, "content-encoding": "gzip" }
            })
          }
          const svg = yield* seating.svg(id, latest.value)
          return HttpServerResponse.stream(seating.paced(svg), {
            contentType: "image/svg+xml",
            contentLength: svg.length,
            headers
          })
        }))
  })).pipe(
  Layer.provide([
    ConcertsRepo.Default,
    ReservationsRepo.Default,
    DatabaseHealth.Default,
    ClosedSales.Default,
    KnownConcerts.Default,
    ListPages.Default,
    SeatingPlans.Default
  ])
)
