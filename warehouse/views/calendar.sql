-- Calendar days with federal fiscal periods (dim_date).
SELECT date_day, year, month, week_start, day_of_week, fiscal_year, fiscal_quarter
FROM dim_date
