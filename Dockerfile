# Ops Console image: web (gunicorn), Celery worker and Celery beat all run it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN mkdir -p opsconsole incidents runbooks checklists healthchecks oncall \
    && pip install . \
    && pip uninstall -y opsconsole

COPY . .
# Editable: templates/ and static/ live beside the packages, not inside them.
RUN pip install --no-deps -e . \
    && DEBUG=true python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home-dir /app opsconsole \
    && mkdir -p /app/var \
    && chown -R opsconsole /app/var

USER opsconsole
EXPOSE 8000
CMD ["gunicorn", "-c", "gunicorn.conf.py"]
