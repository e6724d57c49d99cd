-- Every change of a program's rules version is announced to the servers that listen
-- (`purse_program_rules`), delivered once the change commits: a server then knows its
-- compiled program is current without asking on every identification.
CREATE FUNCTION announce_program_rules() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'purse_program_rules',
        NEW.business_id::text || ':' || NEW.program_id::text || ':' || NEW.rules_version::text
    );
    RETURN NULL;
END
$$;

CREATE TRIGGER program_rules_announced
    AFTER INSERT OR UPDATE OF rules_version ON loyalty_programs
    FOR EACH ROW EXECUTE FUNCTION announce_program_rules();
