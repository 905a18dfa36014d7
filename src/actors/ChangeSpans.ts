/**
 * The span of each concert's latest journaled seat change, so that the seating render it
 * causes can link to it (and through it to the buyers' requests). Only the span's identity is
 * kept, never the span with what it references.
 */
import { Effect, Tracer } from "effect"
import { spanOf } from "../Spans.js"

const latest = new Map<string, Tracer.ExternalSpan>()

/** The current span is the one that journaled a change of `concertId`'s seats. */
export const rememberChange = (concertId: string): Effect.Effect<void> =>
  Effect.withFiberRuntime((fiber) => {
    const span = spanOf(fiber)
    if (span !== undefined) latest.set(concertId, identity(span))
    return Effect.void
  })

/** The span of the latest change of `concertId`'s seats made here, if it was traced. */
export const latestChange = (concertId: string): Tracer.ExternalSpan | undefined => latest.get(concertId)

/** The identity of a span, to link to later without keeping it. */
export const identity = (span: Tracer.AnySpan): Tracer.ExternalSpan =>
  Tracer.externalSpan({ traceId: span.traceId, spanId: span.spanId, sampled: span.sampled })
