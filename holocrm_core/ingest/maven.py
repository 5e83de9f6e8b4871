"""The ``maven`` profile: the Maven Analytics CRM sample (accounts, products, sales_pipeline, sales_teams).

Choices, since this export is not one file per canonical entity:

* companies <- accounts.csv. ``company_id`` is the slug of the account name ("Acme Corporation" ->
  "acme-corporation"), so re-runs give the same ids; ``sector`` -> industry with the typo "technolgy" fixed;
  ``revenue`` is in millions of USD -> ``annual_revenue`` in USD; ``office_location`` -> country
  ("Philipines" fixed); ``subsidiary_of`` -> ``parent_company_id`` (slug of the parent's name);
  ``year_established`` kept as ``cf_year_established``.
* deals <- sales_pipeline.csv. ``opportunity_id`` -> deal_id; stage Won/Lost/Engaging/Prospecting ->
  won/lost/qualification/prospecting; product "GTXPro" -> "GTX Pro" (any spelling that matches a
  products.csv name once spaces and case are ignored); ``close_value`` -> value (USD); ``sales_agent`` ->
  owner; ``engage_date`` -> created_at (and stage_changed_at while engaging); ``close_date`` -> closed_at
  and stage_changed_at for won/lost. The export has no deal title: title is "<product> for <account>"
  ("<product>, no account yet" on open deals without an account). An open deal without an account keeps
  company_id empty. Prospecting rows carry no date at all: their ``created_at`` stays empty rather than
  invented (allowed on those rows through ``_allow_empty``), and they are staged, not quarantined.
  products.csv adds ``cf_series`` and ``cf_sales_price``; sales_teams.csv adds ``cf_manager`` and
  ``cf_regional_office``.
* contacts: the export has no people. Each account gets one account-level contact so deals and outcome
  learning have a contact to hang on, with no personal data invented: ``contact_id`` "maven-<slug>",
  ``full_name`` "Primary contact, <account>", no email/phone; lifecycle ``customer`` if the account has a
  won deal (``customer_at`` = its first won close date) else ``lead``; ``lead_at``/``created_at`` = the
  account's first engage date; owner = the agent with most deals on the account. Deals of the account
  point at it (``contact_id``). Their FileReport is ``accounts.csv`` with entity ``contacts``.
* products.csv and sales_teams.csv are lookup tables (FileReport entity None); data_dictionary.csv is
  documentation (entity None).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from holocrm_core import schema
from holocrm_core.ingest import readers
from holocrm_core.ingest.profiles import GENERIC, PROFILES, Profile, assemble
from holocrm_core.ingest.reports import ALLOW_EMPTY, LINE, SOURCE_FILE, FileReport, RawExport, file_error_row

SECTOR_FIXES = {"technolgy": "technology"}
COUNTRY_FIXES = {"Philipines": "Philippines"}
STAGES = {"Won": "won", "Lost": "lost", "Engaging": "qualification", "Prospecting": "prospecting"}
FILES = ("accounts.csv", "products.csv", "sales_pipeline.csv", "sales_teams.csv")


def _slug_expr(column: str) -> pl.Expr:
    return (
        pl.col(column)
        .str.strip_chars()
        .str.to_lowercase()
        .str.replace_all(r"[^0-9a-z]+", "-")
        .str.strip_chars("-")
    )


class MavenProfile(Profile):
    def read(self, export_dir: str | Path) -> RawExport:
        export_dir = Path(export_dir)
        if not export_dir.is_dir():
            raise FileNotFoundError(f"export folder {export_dir} does not exist")
        found = {p.name.lower(): p for p in export_dir.iterdir() if p.is_file()}
        frames: dict[str, pl.DataFrame] = {}
        reports: list[FileReport] = []
        errors: list[dict] = []
        for name in FILES:
            path = found.get(name)
            if path is None:
                message = f"{name}: missing from the Maven export folder {export_dir}"
                reports.append(FileReport(name, None, self.name, 0, error=message))
                errors.append(file_error_row(name, message))
                continue
            try:
                frames[name] = readers.read_source(path)[0][1]
            except readers.UnreadableFile as exc:
                reports.append(FileReport(path.name, None, self.name, 0, error=str(exc)))
                errors.append(file_error_row(path.name, str(exc)))
        for name, path in found.items():
            if name not in FILES and path.suffix.lower() in readers.DATA_SUFFIXES:
                # data_dictionary.csv and the like: documentation, no records to stage
                reports.append(FileReport(path.name, None, self.name, 0))
        pieces: dict[str, list[pl.DataFrame]] = {}
        accounts = frames.get("accounts.csv")
        pipeline = frames.get("sales_pipeline.csv")
        if accounts is not None:
            companies = self._companies(accounts)
            pieces["companies"] = [companies]
            reports.append(FileReport("accounts.csv", "companies", self.name, accounts.height))
            if pipeline is not None:
                pieces["contacts"] = [self._contacts(accounts, pipeline)]
                reports.append(FileReport("accounts.csv", "contacts", self.name, accounts.height))
        if pipeline is not None:
            pieces["deals"] = [
                self._deals(
                    pipeline, frames.get("products.csv"), frames.get("sales_teams.csv"), accounts is not None
                )
            ]
            reports.append(FileReport("sales_pipeline.csv", "deals", self.name, pipeline.height))
        for lookup in ("products.csv", "sales_teams.csv"):
            if lookup in frames:
                reports.append(FileReport(lookup, None, self.name, frames[lookup].height))
        return assemble(pieces, reports, errors, self.name)

    @staticmethod
    def _companies(accounts: pl.DataFrame) -> pl.DataFrame:
        revenue = pl.col("revenue").str.strip_chars().cast(pl.Decimal(18, 4), strict=False)
        return accounts.select(
            _slug_expr("account").alias("company_id"),
            pl.col("account").str.strip_chars().alias("name"),
            pl.col("sector").str.strip_chars().replace(SECTOR_FIXES).alias("industry"),
            pl.col("employees").alias("employees"),
            # revenue is in millions of USD; an unparseable value is passed through for the validator
            pl.coalesce((revenue * 1_000_000).round(2).cast(pl.String), pl.col("revenue")).alias(
                "annual_revenue"
            ),
            pl.when(pl.col("revenue").is_not_null()).then(pl.lit("USD")).alias("revenue_currency"),
            pl.col("office_location").str.strip_chars().replace(COUNTRY_FIXES).alias("country"),
            _slug_expr("subsidiary_of").alias("parent_company_id"),
            pl.col("year_established").alias("cf_year_established"),
            pl.lit("accounts.csv").alias(SOURCE_FILE),
            pl.col(LINE),
        )

    @staticmethod
    def _contacts(accounts: pl.DataFrame, pipeline: pl.DataFrame) -> pl.DataFrame:
        deals = pipeline.select(
            _slug_expr("account").alias("company_id"),
            pl.col("deal_stage").str.strip_chars(),
            pl.col("engage_date").str.strip_chars(),
            pl.col("close_date").str.strip_chars(),
            pl.col("sales_agent").str.strip_chars(),
        ).filter(pl.col("company_id").is_not_null() & (pl.col("company_id") != ""))
        per_account = deals.group_by("company_id").agg(
            pl.col("engage_date").min().alias("first_engaged"),
            pl.col("close_date").filter(pl.col("deal_stage") == "Won").min().alias("first_won"),
            pl.col("sales_agent").mode().sort().first().alias("owner"),
        )
        contacts = accounts.select(
            _slug_expr("account").alias("company_id"),
            pl.col("account").str.strip_chars().alias("company_name"),
            pl.col(LINE),
        ).join(per_account, on="company_id", how="left", maintain_order="left")
        return contacts.select(
            (pl.lit("maven-") + pl.col("company_id")).alias("contact_id"),
            (pl.lit("Primary contact, ") + pl.col("company_name")).alias("full_name"),
            pl.col("company_id"),
            pl.col("company_name"),
            pl.col("owner"),
            pl.when(pl.col("first_won").is_not_null())
            .then(pl.lit("customer"))
            .otherwise(pl.lit("lead"))
            .alias("lifecycle_status"),
            pl.col("first_engaged").alias("lead_at"),
            pl.col("first_won").alias("customer_at"),
            pl.col("first_engaged").alias("created_at"),
            # an account whose deals are all still prospecting has no date to go by
            pl.when(pl.col("first_engaged").is_null()).then(pl.lit("created_at")).alias(ALLOW_EMPTY),
            pl.lit("accounts.csv").alias(SOURCE_FILE),
            pl.col(LINE),
        )

    @staticmethod
    def _deals(
        pipeline: pl.DataFrame, products: pl.DataFrame | None, teams: pl.DataFrame | None, has_accounts: bool
    ) -> pl.DataFrame:
        product_names = (
            products["product"].drop_nulls().str.strip_chars().to_list() if products is not None else []
        )
        spelling = {p.replace(" ", "").lower(): p for p in product_names}
        raw_products = pipeline["product"].drop_nulls().unique().to_list()
        fixes = {
            p: spelling[k]
            for p in raw_products
            if (k := p.replace(" ", "").lower()) in spelling and spelling[k] != p
        }
        stage = pl.col("deal_stage").str.strip_chars()
        account = pl.col("account").str.strip_chars()
        frame = pipeline.with_columns(pl.col("product").str.strip_chars().replace(fixes).alias("product"))
        if products is not None:
            frame = frame.join(
                products.select(
                    pl.col("product").str.strip_chars(),
                    pl.col("series").alias("cf_series"),
                    pl.col("sales_price").alias("cf_sales_price"),
                ),
                on="product",
                how="left",
                maintain_order="left",
            )
        if teams is not None:
            frame = frame.join(
                teams.select(
                    pl.col("sales_agent").str.strip_chars(),
                    pl.col("manager").alias("cf_manager"),
                    pl.col("regional_office").alias("cf_regional_office"),
                ),
                on="sales_agent",
                how="left",
                maintain_order="left",
            )
        closed = stage.is_in(["Won", "Lost"])
        custom = [
            c
            for c in ("cf_series", "cf_sales_price", "cf_manager", "cf_regional_office")
            if c in frame.columns
        ]
        return frame.select(
            pl.col("opportunity_id").alias("deal_id"),
            pl.when(account.is_not_null() & (account != ""))
            .then(pl.format("{} for {}", pl.col("product"), account))
            .otherwise(pl.format("{}, no account yet", pl.col("product")))
            .alias("title"),
            _slug_expr("account").alias("company_id"),
            (
                pl.when(account.is_not_null() & (account != "")).then(
                    pl.lit("maven-") + _slug_expr("account")
                )
                if has_accounts
                else pl.lit(None, pl.String)
            ).alias("contact_id"),
            pl.col("close_value").alias("value"),
            pl.when(pl.col("close_value").is_not_null()).then(pl.lit("USD")).alias("currency"),
            stage.replace(STAGES).alias("stage"),
            pl.col("sales_agent").alias("owner"),
            pl.col("product"),
            pl.col("engage_date").alias("created_at"),
            pl.when(closed)
            .then(pl.col("close_date"))
            .otherwise(pl.col("engage_date"))
            .alias("stage_changed_at"),
            pl.col("close_date").alias("closed_at"),
            *[pl.col(c) for c in custom],
            pl.when(stage == "Prospecting").then(pl.lit("created_at")).alias(ALLOW_EMPTY),
            pl.lit("sales_pipeline.csv").alias(SOURCE_FILE),
            pl.col(LINE),
        )


MAVEN = MavenProfile(
    name="maven",
    description="Maven Analytics CRM sample: accounts, products, sales_pipeline, sales_teams",
    entities={e: GENERIC.entities[e] for e in schema.STAGING_ORDER},
    markers=frozenset(
        {
            "sales_agent",
            "deal_stage",
            "engage_date",
            "close_value",
            "subsidiary_of",
            "office_location",
            "regional_office",
        }
    ),
    marker_files=frozenset({"sales_pipeline.csv", "accounts.csv"}),
)
PROFILES[MAVEN.name] = MAVEN

__all__ = ["MAVEN", "MavenProfile"]
