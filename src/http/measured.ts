/**
 * Counts a buyer's answer and times it, for `/metrics` and the dashboard. An answer that named
 * no concert that exists (400, 404), or a defect (500, possibly before the concert was looked up),
 * is counted under one label, so made-up ids add no series.
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import { Cause, Effect, Exit, Option, Schema } from "effect"
import { noConcert, type OrderKind, recordOrder } from "../Metrics.js"

const statuses = new WeakMap<object, number>()

/** The HTTP status an error is answered with: the one its schema class declares, else 500. */
export const statusOf = (error: unknown): number => {
  if (typeof error !== "object" || error === null) return 500
  const constructor = error.constructor
  let status = statuses.get(constructor)
  if (status === undefined) {
    status = Schema.isSchema(constructor) ? HttpApiSchema.getStatusErrorAST(constructor.ast) : 500
    statuses.set(constructor, status)
  }
  return status
}

/** Counts and times one answer to a buyer, `started` being `performance.now()` when it came. */
export const recordAnswer = <A, E>(
  kind: OrderKind,
  concert: string | undefined,
  exit: Exit.Exit<A, E>,
  started: number
): void => {
  let status = 201
  if (Exit.isFailure(exit)) {
    const failure = Cause.failureOption(exit.cause)
    // A buyer who went away was answered nothing.
    if (Option.isNone(failure) && Cause.isInterruptedOnly(exit.cause)) return
    status = Option.isSome(failure) ? statusOf(failure.value) : 500
  }
  // A defect (500) may come before the concert was found to exist (the database away).
  const label = concert === undefined || status === 400 || status === 404 || status === 500 ? noConcert : concert
  recordOrder(kind, label, status, (performance.now() - started) / 1000)
}

export const measured = (kind: OrderKind, concert: string | undefined) =>
<A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const started = performance.now()
    return Effect.onExit(effect, (exit) => Effect.sync(() => recordAnswer(kind, concert, exit, started)))
  })
