//! Presses of the buttons on call messages and the *Add note* modal
//! (`SONORAN_API` on). Durable: everything a press needs is in its
//! `custom_id` (`cb1:<action>:<call id>`) and the stored card, so a press
//! on a message posted before a restart works; nothing waits in memory.
//!
//! Each press is acknowledged at once with a deferred private reply
//! (Discord allows 3 s), then answered by editing it: done, or why not.

use poise::serenity_prelude as serenity;
use serenity::{
    ActionRowComponent, ComponentInteraction, CreateActionRow, CreateInputText, CreateInteractionResponse,
    CreateInteractionResponseMessage, CreateModal, EditInteractionResponse, InputTextStyle, Interaction,
    Member, ModalInteraction, User,
};

use super::{BotData, Error};
use crate::control::Presser;
use crate::domain::buttons::{Action, NOTE_FIELD, NOTE_MAX};

/// poise's `event_handler`: interactions other than slash commands.
pub async fn handle(
    ctx: &serenity::Context,
    event: &serenity::FullEvent,
    data: &BotData,
) -> Result<(), Error> {
    let serenity::FullEvent::InteractionCreate { interaction } = event else {
        return Ok(());
    };
    match interaction {
        Interaction::Component(press) => component(ctx, press, data).await,
        Interaction::Modal(submit) => modal(ctx, submit, data).await,
        _ => Ok(()),
    }
}

fn presser(user: &User, member: Option<&Member>) -> Presser {
    let name = member
        .map(|m| m.display_name().to_owned())
        .unwrap_or_else(|| user.global_name.clone().unwrap_or_else(|| user.name.clone()));
    Presser {
        id: user.id.get(),
        name,
        roles: member
            .map(|m| m.roles.iter().map(|r| r.get()).collect())
            .unwrap_or_default(),
        manage_guild: member
            .and_then(|m| m.permissions)
            .is_some_and(|p| p.manage_guild() || p.administrator()),
    }
}

async fn component(
    ctx: &serenity::Context,
    press: &ComponentInteraction,
    data: &BotData,
) -> Result<(), Error> {
    let Some((action, call_id)) = Action::parse(&press.data.custom_id) else {
        return Ok(());
    };
    let who = presser(&press.user, press.member.as_ref());
    if action == Action::Note && data.control.sonoran().is_on() && data.control.may_press(action, &who) {
        // The form first; the note is sent when it is submitted.
        let form = CreateModal::new(
            Action::NoteSubmit.custom_id(call_id),
            format!("Note on call #{call_id}"),
        )
        .components(vec![CreateActionRow::InputText(
            CreateInputText::new(InputTextStyle::Paragraph, "Note", NOTE_FIELD)
                .max_length(NOTE_MAX as u16)
                .required(true),
        )]);
        press
            .create_response(&ctx.http, CreateInteractionResponse::Modal(form))
            .await?;
        return Ok(());
    }
    let action = if action == Action::Note {
        Action::NoteSubmit
    } else {
        action
    };
    press
        .create_response(
            &ctx.http,
            CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new().ephemeral(true)),
        )
        .await?;
    let text = answer(data, action, call_id, &who, None).await;
    press
        .edit_response(&ctx.http, EditInteractionResponse::new().content(text))
        .await?;
    Ok(())
}

async fn modal(ctx: &serenity::Context, submit: &ModalInteraction, data: &BotData) -> Result<(), Error> {
    let Some((Action::NoteSubmit, call_id)) = Action::parse(&submit.data.custom_id) else {
        return Ok(());
    };
    submit
        .create_response(
            &ctx.http,
            CreateInteractionResponse::Defer(CreateInteractionResponseMessage::new().ephemeral(true)),
        )
        .await?;
    let note: Option<String> = submit
        .data
        .components
        .iter()
        .flat_map(|row| row.components.iter())
        .find_map(|c| match c {
            ActionRowComponent::InputText(input) if input.custom_id == NOTE_FIELD => input.value.clone(),
            _ => None,
        });
    let who = presser(&submit.user, submit.member.as_ref());
    let text = answer(data, Action::NoteSubmit, call_id, &who, note.as_deref()).await;
    submit
        .edit_response(&ctx.http, EditInteractionResponse::new().content(text))
        .await?;
    Ok(())
}

async fn answer(data: &BotData, action: Action, call_id: i64, who: &Presser, note: Option<&str>) -> String {
    match data.control.press(action, call_id, who, note).await {
        Ok(answer) => answer.text,
        Err(e) => {
            tracing::error!(error = %e, ?action, call_id, "storing a button press failed");
            "The CAD did it, but cadbridge could not store it: the card may be out of date.".to_owned()
        }
    }
}
