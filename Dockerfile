# OnAir application image: web, worker, beat and playback all run from it.
FROM python:3.11-slim-bookworm AS app
ENV PYTHONUNBUFFERED=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1 \
    UV_PROJECT_ENVIRONMENT=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
 && apt-get install -y --no-install-recommends libvlc5 vlc-plugin-base \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-cache-dir uv \
 && useradd --create-home --uid 1000 onair
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY . .
RUN SECRET_KEY=build-only DATABASE_URL=sqlite:////tmp/build.sqlite3 ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput \
 && mkdir -p /app/var && chown -R onair /app/var
USER onair
EXPOSE 8000

# Icecast 2.4 from Debian, configured from the environment at start.
FROM debian:bookworm-slim AS icecast
RUN apt-get update \
 && apt-get install -y --no-install-recommends icecast2 gettext-base \
 && rm -rf /var/lib/apt/lists/*
COPY docs/icecast.xml.template /etc/icecast2/icecast.xml.template
USER icecast2
EXPOSE 8000
CMD ["sh", "-c", "envsubst < /etc/icecast2/icecast.xml.template > /tmp/icecast.xml && exec icecast2 -c /tmp/icecast.xml"]
