-- The demo's "production": a small SaaS (nutrition tracking with a Telegram bot), 27 tables
-- with foreign keys, sequences, an enum, a trigger, a view, a second schema and a partitioned table;
-- large objects, a materialized view and a NOT VALID constraint.
SELECT setseed(0.24);

CREATE SCHEMA billing;
CREATE TYPE meal_type AS ENUM ('breakfast', 'lunch', 'dinner', 'snack');

CREATE TABLE billing.plans (
    id serial PRIMARY KEY, code text UNIQUE NOT NULL, title text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0), period_days integer NOT NULL DEFAULT 30);
CREATE TABLE users (
    id bigserial PRIMARY KEY, email text UNIQUE, display_name text NOT NULL,
    locale text NOT NULL DEFAULT 'ru', created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE telegram_users (
    telegram_id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
    username text, language_code text, is_blocked boolean NOT NULL DEFAULT false);
CREATE TABLE user_profiles (
    user_id bigint PRIMARY KEY REFERENCES users ON DELETE CASCADE, height_cm numeric(5,1),
    birth_year integer, sex char(1) CHECK (sex IN ('m', 'f')), activity_level smallint DEFAULT 2);
CREATE TABLE billing.subscriptions (
    id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, plan_id integer NOT NULL REFERENCES billing.plans,
    started_at timestamptz NOT NULL, expires_at timestamptz NOT NULL, auto_renew boolean NOT NULL DEFAULT true);
CREATE TABLE billing.payments (
    id bigserial PRIMARY KEY, subscription_id bigint REFERENCES billing.subscriptions, user_id bigint NOT NULL REFERENCES users,
    amount_cents integer NOT NULL, currency char(3) NOT NULL DEFAULT 'RUB', provider text NOT NULL,
    status text NOT NULL CHECK (status IN ('pending', 'paid', 'refunded', 'failed')), paid_at timestamptz);
CREATE TABLE billing.promo_codes (
    id serial PRIMARY KEY, code text UNIQUE NOT NULL, discount_percent integer NOT NULL, valid_until date);
CREATE TABLE billing.promo_redemptions (
    promo_code_id integer NOT NULL REFERENCES billing.promo_codes, user_id bigint NOT NULL REFERENCES users,
    redeemed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (promo_code_id, user_id));
CREATE TABLE food_categories (id serial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE foods (
    id serial PRIMARY KEY, category_id integer REFERENCES food_categories, name text NOT NULL,
    kcal_per_100g numeric(6,1) NOT NULL, protein numeric(5,1), fat numeric(5,1), carbs numeric(5,1));
CREATE TABLE meals (
    id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, kind meal_type NOT NULL,
    eaten_at timestamptz NOT NULL, photo_url text, note text);
CREATE INDEX meals_user_eaten ON meals (user_id, eaten_at);
CREATE TABLE meal_items (
    id bigserial PRIMARY KEY, meal_id bigint NOT NULL REFERENCES meals ON DELETE CASCADE,
    food_id integer NOT NULL REFERENCES foods, grams numeric(6,1) NOT NULL CHECK (grams > 0));
CREATE TABLE recipes (id serial PRIMARY KEY, author_id bigint REFERENCES users, title text NOT NULL, steps text);
CREATE TABLE recipe_ingredients (
    recipe_id integer NOT NULL REFERENCES recipes ON DELETE CASCADE, food_id integer NOT NULL REFERENCES foods,
    grams numeric(6,1) NOT NULL, PRIMARY KEY (recipe_id, food_id));
CREATE TABLE water_logs (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,
    ml integer NOT NULL, logged_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE weight_logs (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,
    kg numeric(5,2) NOT NULL, logged_on date NOT NULL, UNIQUE (user_id, logged_on));
CREATE TABLE exercises (id serial PRIMARY KEY, name text UNIQUE NOT NULL, kcal_per_minute numeric(4,1));
CREATE TABLE workouts (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,
    started_at timestamptz NOT NULL, minutes integer NOT NULL);
CREATE TABLE workout_sets (id bigserial PRIMARY KEY, workout_id bigint NOT NULL REFERENCES workouts ON DELETE CASCADE,
    exercise_id integer NOT NULL REFERENCES exercises, reps integer, weight_kg numeric(5,1));
CREATE TABLE goals (id serial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, kcal_per_day integer,
    target_weight_kg numeric(5,2), active boolean NOT NULL DEFAULT true);
CREATE TABLE reminders (id serial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users, at_time time NOT NULL,
    message text NOT NULL);
CREATE TABLE notifications (id bigserial PRIMARY KEY, user_id bigint NOT NULL REFERENCES users,
    sent_at timestamptz NOT NULL, channel text NOT NULL, body text NOT NULL);
CREATE TABLE feedback (id serial PRIMARY KEY, user_id bigint REFERENCES users, rating smallint CHECK (rating BETWEEN 1 AND 5),
    body text, created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE referrals (referrer_id bigint NOT NULL REFERENCES users, referred_id bigint NOT NULL REFERENCES users,
    created_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (referrer_id, referred_id));
CREATE TABLE audit_log (id bigserial, user_id bigint, action text NOT NULL, at timestamptz NOT NULL DEFAULT now(),
    details jsonb) PARTITION BY RANGE (at);
CREATE TABLE audit_log_2026_q3 PARTITION OF audit_log FOR VALUES FROM ('2026-07-01') TO ('2026-10-01');
CREATE TABLE audit_log_2026_q4 PARTITION OF audit_log FOR VALUES FROM ('2026-10-01') TO ('2027-01-01');
CREATE TABLE audit_log_default PARTITION OF audit_log DEFAULT;

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
CREATE TRIGGER users_touch BEFORE UPDATE ON users FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE VIEW daily_calories AS
    SELECT m.user_id, date_trunc('day', m.eaten_at) AS day, sum(i.grams * f.kcal_per_100g / 100) AS kcal
    FROM meals m JOIN meal_items i ON i.meal_id = m.id JOIN foods f ON f.id = i.food_id GROUP BY 1, 2;

INSERT INTO billing.plans (code, title, price_cents, period_days) VALUES
    ('free', 'Free', 0, 3650), ('month', 'Pro, monthly', 29900, 30), ('year', 'Pro, yearly', 249000, 365);
INSERT INTO users (email, display_name, locale, created_at)
    SELECT 'user' || g || '@example.org', 'User ' || g, (ARRAY['ru', 'en', 'kk'])[1 + g % 3],
           timestamptz '2025-01-01' + g * interval '3 hours'
    FROM generate_series(1, 3000) g;
INSERT INTO telegram_users SELECT 100000000 + g, g, 'tg_user_' || g, 'ru', g % 50 = 0 FROM generate_series(1, 2400) g;
INSERT INTO user_profiles SELECT g, 150 + (g % 50), 1960 + g % 45, CASE WHEN g % 2 = 0 THEN 'm' ELSE 'f' END, 1 + g % 4
    FROM generate_series(1, 2800) g;
INSERT INTO billing.subscriptions (user_id, plan_id, started_at, expires_at)
    SELECT g, 1 + g % 3, timestamptz '2026-01-01' + g * interval '1 hour', timestamptz '2026-02-01' + g * interval '1 hour'
    FROM generate_series(1, 1800) g;
INSERT INTO billing.payments (subscription_id, user_id, amount_cents, provider, status, paid_at)
    SELECT 1 + g % 1800, 1 + g % 1800, 29900, (ARRAY['yookassa', 'telegram_stars'])[1 + g % 2],
           (ARRAY['paid', 'paid', 'paid', 'refunded', 'failed'])[1 + g % 5], timestamptz '2026-01-01' + g * interval '2 hours'
    FROM generate_series(1, 4200) g;
INSERT INTO billing.promo_codes (code, discount_percent, valid_until)
    SELECT 'PROMO' || g, 5 * (1 + g % 10), date '2026-12-31' FROM generate_series(1, 40) g;
INSERT INTO billing.promo_redemptions (promo_code_id, user_id) SELECT 1 + g % 40, g FROM generate_series(1, 600) g;
INSERT INTO food_categories (name) SELECT 'Category ' || g FROM generate_series(1, 24) g;
INSERT INTO foods (category_id, name, kcal_per_100g, protein, fat, carbs)
    SELECT 1 + g % 24, 'Food ' || g, 20 + (g * 37) % 600, (g % 30), (g % 20), (g % 70) FROM generate_series(1, 900) g;
INSERT INTO meals (user_id, kind, eaten_at, note)
    SELECT 1 + g % 3000, (ARRAY['breakfast', 'lunch', 'dinner', 'snack']::meal_type[])[1 + g % 4],
           timestamptz '2026-06-01' + g * interval '7 minutes', CASE WHEN g % 9 = 0 THEN 'with photo' END
    FROM generate_series(1, 24000) g;
INSERT INTO meal_items (meal_id, food_id, grams) SELECT 1 + g % 24000, 1 + g % 900, 50 + g % 300 FROM generate_series(1, 52000) g;
INSERT INTO recipes (author_id, title, steps) SELECT 1 + g % 3000, 'Recipe ' || g, repeat('Mix and cook. ', 1 + g % 8)
    FROM generate_series(1, 350) g;
INSERT INTO recipe_ingredients SELECT r, 1 + (r * 7 + k) % 900, 20 + k * 10 FROM generate_series(1, 350) r, generate_series(1, 5) k;
INSERT INTO water_logs (user_id, ml, logged_at) SELECT 1 + g % 3000, 250, timestamptz '2026-06-01' + g * interval '5 minutes'
    FROM generate_series(1, 15000) g;
INSERT INTO weight_logs (user_id, kg, logged_on) SELECT 1 + g % 3000, 55 + (g % 50), date '2026-01-01' + g / 3000
    FROM generate_series(1, 9000) g;
INSERT INTO exercises (name, kcal_per_minute) SELECT 'Exercise ' || g, 3 + g % 12 FROM generate_series(1, 60) g;
INSERT INTO workouts (user_id, started_at, minutes) SELECT 1 + g % 3000, timestamptz '2026-06-01' + g * interval '1 hour', 20 + g % 60
    FROM generate_series(1, 5000) g;
INSERT INTO workout_sets (workout_id, exercise_id, reps, weight_kg) SELECT 1 + g % 5000, 1 + g % 60, 8 + g % 8, g % 80
    FROM generate_series(1, 16000) g;
INSERT INTO goals (user_id, kcal_per_day, target_weight_kg) SELECT g, 1800 + g % 900, 60 + g % 30 FROM generate_series(1, 2200) g;
INSERT INTO reminders (user_id, at_time, message) SELECT 1 + g % 3000, time '08:00' + (g % 12) * interval '1 hour', 'Log your meal'
    FROM generate_series(1, 3100) g;
INSERT INTO notifications (user_id, sent_at, channel, body)
    SELECT 1 + g % 3000, timestamptz '2026-06-01' + g * interval '4 minutes', 'telegram', 'Reminder ' || g
    FROM generate_series(1, 20000) g;
INSERT INTO feedback (user_id, rating, body) SELECT 1 + g % 3000, 1 + g % 5, 'Feedback ' || g FROM generate_series(1, 480) g;
INSERT INTO referrals (referrer_id, referred_id) SELECT g, 1500 + g FROM generate_series(1, 700) g;
INSERT INTO audit_log (user_id, action, at, details)
    SELECT 1 + g % 3000, (ARRAY['login', 'meal.create', 'payment', 'profile.update'])[1 + g % 4],
           timestamptz '2026-07-01' + g * interval '10 minutes', jsonb_build_object('n', g)
    FROM generate_series(1, 30000) g;
-- what row counts never see: meal photos as large objects, a materialized view, a CHECK added NOT VALID
SELECT lo_from_bytea(0, convert_to('photo of meal ' || g, 'UTF8')) FROM generate_series(1, 25) g;
CREATE MATERIALIZED VIEW plan_popularity AS
    SELECT p.code, count(s.id) AS subscriptions FROM billing.plans p
    LEFT JOIN billing.subscriptions s ON s.plan_id = p.id GROUP BY p.code;
ALTER TABLE feedback ADD CONSTRAINT feedback_body_short CHECK (length(body) < 2000) NOT VALID;
ANALYZE;
