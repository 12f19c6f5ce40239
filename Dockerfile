# ModelGuard image: one image for the controller, the broker, injected proxies and their iptables
# init container. It runs the compiled JavaScript (dist/, built in the first stage) with production
# dependencies only: no TypeScript, tsx or esbuild in the image (docs/build.md).
#   docker build -t modelguard:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t REGISTRY/modelguard:0.1.0 --push .

# 1. Compile: every dependency, then `npm run build` (tsc → dist/ with source maps, the dashboard bundle).
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
RUN npm run build

# 2. Production dependencies alone (.npmrc: no install scripts, so no CUDA download for onnxruntime).
#    onnxruntime-node ships its CPU binaries for every platform (≈ 290 MB); the image keeps its own
#    (linux/x64 45 MB, linux/arm64 25 MB).
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force \
 && cd node_modules/onnxruntime-node/bin/napi-v6 \
 && find . -mindepth 2 -maxdepth 2 -type d ! -path "./linux/$(node -p process.arch)" -exec rm -rf {} + \
 && find . -mindepth 1 -maxdepth 1 -type d -empty -delete

FROM node:20-slim
# iptables for the injected init container's traffic redirect (the proxy itself never needs it); iproute2
# (tc) for the broker's optional uplink shaping (Gateway.spec.trafficQoS, deploy/overlays/traffic-qos).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends iptables iproute2 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
# Non-root by default; the manifests set the user per container (the init container runs as root
# with NET_ADMIN only, the injected proxy as 1337, which its redirect rules exempt).
USER 10001:10001
EXPOSE 8080 8081 8010 9090 9443
ENTRYPOINT ["node", "/app/bin/modelguard.js"]
CMD ["up"]
