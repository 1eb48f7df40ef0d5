// The route modules the server serves: the one place to add yours (see docs/adding-a-route.md).
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { authRoutes } from './auth/auth.routes.ts'
import { mfaRoutes } from './auth/mfa.routes.ts'
import { recoveryRoutes } from './auth/recovery.routes.ts'
import { eventsRoutes } from './events/events.routes.ts'
import { healthRoutes } from './http/health.routes.ts'
import { jwksRoutes } from './keys/jwks.routes.ts'
import { metricsRoutes } from './metrics/metrics.routes.ts'
import { sessionsRoutes } from './sessions/sessions.routes.ts'
import { usersRoutes } from './users/users.routes.ts'
import { webhooksRoutes } from './webhooks/webhooks.routes.ts'

export const routeModules: FastifyPluginAsyncTypebox[] = [
  healthRoutes,
  metricsRoutes,
  jwksRoutes,
  authRoutes,
  mfaRoutes,
  recoveryRoutes,
  sessionsRoutes,
  usersRoutes,
  eventsRoutes,
  webhooksRoutes,
]
