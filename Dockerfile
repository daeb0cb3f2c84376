# One image for every Portico service; docker-compose.yml picks the process with `command`.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
COPY gen/package.json gen/
COPY services/kit/package.json services/kit/
COPY services/auth/package.json services/auth/
COPY services/greeter/package.json services/greeter/
COPY services/lang/package.json services/lang/
COPY services/gateway/package.json services/gateway/
COPY web/package.json web/
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && (npm run build -w web --if-present) && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app /app
USER node
EXPOSE 8080 9090 8081 8082 8083
CMD ["node", "--single-threaded-gc", "services/gateway/dist/main.js"]
